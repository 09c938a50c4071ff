#!/bin/bash
# /root/docker_init.sh of the OMS CE stand-in: applies the schema changes (doc 003/004).
exec python3 /opt/standin/docker_init.py "$@"
