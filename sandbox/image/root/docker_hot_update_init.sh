#!/bin/bash
# /root/docker_hot_update_init.sh of the OMS CE stand-in (OD 309.hot-upgrade.md step 7): in place, after the new
# release's files were copied into the running container, migrate the metadata and start the management programs.
exec python3 /opt/standin/hot_update_init.py "$@"
