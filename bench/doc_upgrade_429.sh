#!/usr/bin/env bash
# Document 004's command sequence as a plain shell script, on the sandbox, for comparison.
# As an operator types it: one node after the other; the console steps (HA) done in SQL;
# `sleep 300` replaced by the same readiness poll the runbook uses (supervisorctl answers).
# Prints T1 and SERVING (epoch seconds) for the benchmark to read.
set -euo pipefail
. "$(dirname "$0")/sandbox_client.sh"
PKG="$S/packages/oms_4.2.9-ce.tar.gz"
OUT="$S/backups/script-$(date +%s%N)"; mkdir -p "$OUT"
# An OceanBase tenant ends any statement after ob_query_timeout (10 s by default): the doc's single
# DELETE over years of heartbeats and a mysqldump of a big cm would fail. A DBA raises the tenant's
# timeouts first (before T1, so outside the downtime) and sets them back at the end, as the runbook does.
case "${ENGINE,,}" in *oceanbase*)
  ob_before=$(sql -N -e "SELECT @@global.ob_query_timeout, @@global.ob_trx_timeout, @@global.ob_trx_idle_timeout")
  sql -e "SET GLOBAL ob_query_timeout=86400000000; SET GLOBAL ob_trx_timeout=86400000000; SET GLOBAL ob_trx_idle_timeout=86400000000"
  read -r q t i <<<"$ob_before"
  trap 'sql -e "SET GLOBAL ob_query_timeout=$q; SET GLOBAL ob_trx_timeout=$t; SET GLOBAL ob_trx_idle_timeout=$i"; rm -f "$CNF"' EXIT
  ;;
esac
# 1. disable HA
sql -D "$RM" -e "UPDATE oms_normal_config SET cfg_value=JSON_SET(cfg_value,'$.enable',false) WHERE cfg_name='ha.config'"
# 2. stop the old container on IP1 and IP2; T1
echo "T1 $(date +%s.%N)"
for n in $NODES; do DOCKER_HOST=unix://$S/nodes/$n/docker.sock docker stop oms_ce >/dev/null; done
# 3. prune heartbeats
for db in $CM_HB; do
  # the doc's statement; an engine that refuses a subquery on the target table (MySQL 1093) gets the derived form
  sql -D "$db" -e "delete from heatbeat_sequence where id < (select max(id) from heatbeat_sequence);" 2>/dev/null ||
    sql -D "$db" -e "delete from heatbeat_sequence where id < (select m from (select max(id) m from heatbeat_sequence) t);"
done
# 3.1 back up rm, cm, cm_hb; sizes not 0
for db in $RM $CM $CM_HB; do
  mysqldump --defaults-extra-file="$CNF" --triggers=false --single-transaction $db > "$OUT/$db.sql"
  test -s "$OUT/$db.sql"
done
# load the image; rename the old container so the new one can take its name; docker run
for n in $NODES; do
  export DOCKER_HOST=unix://$S/nodes/$n/docker.sock
  image=$(docker load -i "$PKG" | sed -n 's/^Loaded image: //p' | head -1)
  binds=$(docker inspect -f '{{range .HostConfig.Binds}}-v {{.}} {{end}}' oms_ce)
  ip=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' oms_ce | sed -n 's/^OMS_HOST_IP=//p')
  docker rename oms_ce oms_ce-old >/dev/null
  docker run -dit --net host $binds -e OMS_HOST_IP=$ip -e IS_UPGRADE=true --privileged=true --pids-limit -1 \
    --ulimit nproc=65535:65535 --name oms_ce "$image" >/dev/null
done
# docker exec; `sleep 300` (polled); bash /root/docker_init.sh once for the region
# (supervisor 4's `status` exits 3 while a program is STOPPED, as oms_console is until started: what it
# prints is read, its exit status is not, or `set -o pipefail` would make the poll wait forever)
programs() { docker exec oms_ce supervisorctl status 2>/dev/null || true; }
first=$(echo $NODES | cut -d' ' -f1)
export DOCKER_HOST=unix://$S/nodes/$first/docker.sock
until programs | grep -q '^oms_drc_supervisor *RUNNING'; do sleep 0.5; done
docker exec oms_ce bash /root/docker_init.sh >/dev/null
# the other nodes of the region: their console by hand (no init of their own)
for n in $NODES; do
  [ "$n" = "$first" ] && continue
  export DOCKER_HOST=unix://$S/nodes/$n/docker.sock
  until programs | grep -q '^oms_drc_supervisor *RUNNING'; do sleep 0.5; done
  docker exec oms_ce supervisorctl start oms_console >/dev/null
done
# every node serves again
for n in $NODES; do
  ip=127.0.0.$((10 + ${n#n}))
  until curl -sf "http://$ip:8089/oms/health" | grep -q '"healthy": *true'; do sleep 0.5; done
done
echo "SERVING $(date +%s.%N)"
# enable HA, T2, refetchStoreIntervalMin
sql -D "$RM" -e "UPDATE oms_normal_config SET cfg_value=JSON_SET(cfg_value,'$.enable',true,'$.refetchStoreIntervalMin',35) WHERE cfg_name='ha.config'"
echo "T2 $(date +%s.%N)"
