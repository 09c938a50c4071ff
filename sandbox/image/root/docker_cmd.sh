#!/bin/bash
# Entry point of the OMS CE stand-in (the real image's entry point is /root/docker_cmd.sh, doc):
# supervisord and its programs.
exec python3 /opt/standin/supervisord.py
