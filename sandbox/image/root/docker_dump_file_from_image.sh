#!/bin/bash
# docker_dump_file_from_image.sh IMAGE (OD 309.hot-upgrade.md step 4): copy the new image's OMS files into
# ./oms_hot_files on the host (the stand-in's choice of folder: the real one is not public).
set -eu  # POSIX: the page runs them with `sh`, which is dash on Debian
IMAGE=${1:?usage: docker_dump_file_from_image.sh IMAGE}
name=oms-dump-$$
rm -rf ./oms_hot_files && mkdir -p ./oms_hot_files
docker create --name "$name" "$IMAGE" bash >/dev/null
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
docker cp "$name":/opt/standin ./oms_hot_files/standin
docker cp "$name":/root/docker_init.sh ./oms_hot_files/docker_init.sh
docker cp "$name":/root/docker_hot_update_init.sh ./oms_hot_files/docker_hot_update_init.sh
echo "dumped the files of $IMAGE into $(pwd)/oms_hot_files"
