#!/bin/bash
# docker_copy_dumpfile_rollback.sh CONTAINER BACKUP (OD 309.hot-upgrade.md step 7, when the hot update failed):
# put the files backed up under BACKUP (/home/admin/logs/backup<timestamp>) back into the container.
set -eu  # POSIX: the page runs them with `sh`, which is dash on Debian
C=${1:?usage: docker_copy_dumpfile_rollback.sh CONTAINER BACKUP}
B=${2:?usage: docker_copy_dumpfile_rollback.sh CONTAINER BACKUP}
docker exec "$C" sh -c "test -d $B/standin && rm -rf /opt/standin && cp -a $B/standin /opt/standin && cp -a $B/docker_init.sh /root/docker_init.sh"
echo "put the files of $B back into $C"
