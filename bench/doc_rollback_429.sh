#!/usr/bin/env bash
# Document 004's rollback commands (step 9) as a plain shell script, on the sandbox after an
# upgrade_429 run (its backups are read from that run's ledger). Prints T3, RESTORE_START,
# RESTORE_END, SERVING (epoch seconds).
set -euo pipefail
. "$(dirname "$0")/sandbox_client.sh"
LEDGER=$(ls -d "$S"/ledgers/upgrade_429/*/ledger.json | tail -1)
DIR=$(python3 -c 'import json,sys,os; print(os.path.dirname(json.load(open(sys.argv[1]))["facts"]["backups"][0]["path"]))' "$LEDGER")
sql -D "$RM" -e "UPDATE oms_normal_config SET cfg_value=JSON_SET(cfg_value,'$.enable',false) WHERE cfg_name='ha.config'"
echo "T3 $(date +%s.%N)"
for n in $NODES; do DOCKER_HOST=unix://$S/nodes/$n/docker.sock docker stop oms_ce >/dev/null; done
echo "RESTORE_START $(date +%s.%N)"
for db in $RM $CM $CM_HB; do sql -e "drop database $db; create database $db;"; done
for db in $RM $CM $CM_HB; do sql -e "source $DIR/$db.sql" -D$db; done
echo "RESTORE_END $(date +%s.%N)"
for n in $NODES; do
  export DOCKER_HOST=unix://$S/nodes/$n/docker.sock
  docker rename oms_ce oms_ce-new >/dev/null
  old=$(docker ps -a --format '{{.Names}}' | grep '^oms_ce-pre-' | head -1)
  docker rename "$old" oms_ce >/dev/null
  docker restart oms_ce >/dev/null
done
for n in $NODES; do
  ip=127.0.0.$((10 + ${n#n}))
  until curl -sf "http://$ip:8089/oms/health" | grep -q '"healthy": *true'; do sleep 0.5; done
done
echo "SERVING $(date +%s.%N)"
sql -D "$RM" -e "UPDATE oms_normal_config SET cfg_value=JSON_SET(cfg_value,'$.enable',true,'$.refetchStoreIntervalMin',40) WHERE cfg_name='ha.config'"
