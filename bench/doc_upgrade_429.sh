#!/usr/bin/env bash
# Document 004's command sequence as a plain shell script, on the sandbox, for comparison.
# As an operator types it: one node after the other; the console steps (HA) done in SQL;
# `sleep 300` replaced by the same readiness poll the runbook uses (supervisorctl answers).
# Prints T1 and SERVING (epoch seconds) for the benchmark to read.
set -euo pipefail
. "$(dirname "$0")/sandbox_client.sh"
PKG="$S/packages/oms-4.2.9-CE.tar.gz"
OUT="$S/backups/script-$(date +%s%N)"; mkdir -p "$OUT"
# 1. disable HA
sql -D rm_428 -e "UPDATE oms_normal_config SET cfg_value=JSON_SET(cfg_value,'$.enable',false) WHERE cfg_name='ha.config'"
# 2. stop the old container on IP1 and IP2; T1
echo "T1 $(date +%s.%N)"
for n in $NODES; do DOCKER_HOST=unix://$S/nodes/$n/docker.sock docker stop oms_ce >/dev/null; done
# 3. prune heartbeats
sql -D cm_hb_428 -e "delete from heatbeat_sequence where id < (select max(id) from heatbeat_sequence);"
# 3.1 back up rm, cm, cm_hb; sizes not 0
for db in rm_428 cm_428 cm_hb_428; do
  mysqldump --defaults-extra-file="$CNF" --triggers=false $db > "$OUT/$db.sql"
  test -s "$OUT/$db.sql"
done
# load the image; rename the old container so the new one can take its name; docker run
for n in $NODES; do
  export DOCKER_HOST=unix://$S/nodes/$n/docker.sock
  docker load -i "$PKG" >/dev/null
  binds=$(docker inspect -f '{{range .HostConfig.Binds}}-v {{.}} {{end}}' oms_ce)
  ip=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' oms_ce | sed -n 's/^OMS_HOST_IP=//p')
  docker rename oms_ce oms_ce-old >/dev/null
  docker run -dit --net host $binds -e OMS_HOST_IP=$ip -e IS_UPGRADE=true --privileged=true --pids-limit -1 \
    --ulimit nproc=65535:65535 --name oms_ce oms-standin/oms:feature_4.2.9-ce >/dev/null
done
# docker exec; `sleep 300` (polled); bash /root/docker_init.sh once for the region
first=$(echo $NODES | cut -d' ' -f1)
export DOCKER_HOST=unix://$S/nodes/$first/docker.sock
until docker exec oms_ce supervisorctl status >/dev/null 2>&1; do sleep 0.5; done
docker exec oms_ce bash /root/docker_init.sh >/dev/null
# every node serves again
for n in $NODES; do
  ip=127.0.0.$((10 + ${n#n}))
  until curl -sf "http://$ip:8089/oms/health" | grep -q '"healthy": true'; do sleep 0.5; done
done
echo "SERVING $(date +%s.%N)"
# enable HA, T2, refetchStoreIntervalMin
sql -D rm_428 -e "UPDATE oms_normal_config SET cfg_value=JSON_SET(cfg_value,'$.enable',true,'$.refetchStoreIntervalMin',35) WHERE cfg_name='ha.config'"
echo "T2 $(date +%s.%N)"
