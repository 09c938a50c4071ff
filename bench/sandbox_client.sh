# Sourced by the bench scripts: S (the sandbox folder), CNF (a 0600 MySQL option file for the
# sandbox MetaDB, removed on exit) and sql (the mysql client with it).
S=${OMSUP_SANDBOX_DIR:-/tmp/omsup-sandbox}
CNF=$(mktemp); trap 'rm -f "$CNF"' EXIT
python3 - "$CNF" "$S" <<'PY'
import sys, pathlib
pw = (pathlib.Path(sys.argv[2]) / "secrets/metadb_password").read_text(encoding="utf-8")
q = '"' + pw.replace("\\", "\\\\").replace('"', '\\"') + '"'
pathlib.Path(sys.argv[1]).write_text(f"[client]\nhost=127.0.0.1\nport=3310\nuser=oms_meta\npassword={q}\n", encoding="utf-8")
PY
NODES=$(ls "$S/nodes")
sql() { mysql --defaults-extra-file="$CNF" "$@"; }
