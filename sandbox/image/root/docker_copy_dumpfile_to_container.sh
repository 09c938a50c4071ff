#!/bin/bash
# docker_copy_dumpfile_to_container.sh CONTAINER (OD 309.hot-upgrade.md step 6): back the container's files up
# under /home/admin/logs/backup<timestamp> (the page's rollback names that folder), then copy the dumped new
# files into the running container.
set -eu  # POSIX: the page runs them with `sh`, which is dash on Debian
C=${1:?usage: docker_copy_dumpfile_to_container.sh CONTAINER}
test -d ./oms_hot_files/standin || { echo "no ./oms_hot_files: run docker_dump_file_from_image.sh first" >&2; exit 2; }
B=/home/admin/logs/backup$(date +%Y%m%d%H%M%S)
docker exec "$C" sh -c "mkdir -p $B && cp -a /opt/standin $B/standin && cp -a /root/docker_init.sh /root/docker_hot_update_init.sh $B/ 2>/dev/null; true"
docker cp ./oms_hot_files/standin/. "$C":/opt/standin/
docker cp ./oms_hot_files/docker_init.sh "$C":/root/docker_init.sh
docker cp ./oms_hot_files/docker_hot_update_init.sh "$C":/root/docker_hot_update_init.sh
echo "copied the new files into $C; its files before: $B"
