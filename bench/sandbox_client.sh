# Sourced by the bench scripts: S (the sandbox folder), CNF (a 0600 MySQL option file for the
# sandbox MetaDB as OMS's user, removed on exit), sql (the mysql client with it), NODES, and
# RM/CM/CM_HB (the databases), ENGINE (the MetaDB: oceanbase or mariadb), all read from
# `python -m sandbox status --json`.
S=${OMSUP_SANDBOX_DIR:-/tmp/omsup-sandbox}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CNF=$(mktemp); trap 'rm -f "$CNF"' EXIT
PY=${OMSUP_PYTHON:-$ROOT/.venv/bin/python}  # the bench scripts pass the interpreter they run under
eval "$("$PY" - "$CNF" <<'PY'
import json, pathlib, shlex, subprocess, sys
st = json.loads(subprocess.run([sys.executable, "-m", "sandbox", "status", "--json"], capture_output=True,
                               text=True, check=True).stdout)
m = st["metadb"]
q = '"' + m["password"].replace("\\", "\\\\").replace('"', '\\"') + '"'
pathlib.Path(sys.argv[1]).write_text(f"[client]\nhost={m['host']}\nport={m['port']}\nuser={m['user']}\npassword={q}\n",
                                     encoding="utf-8")
print(f"RM={shlex.quote(m['rm'])} CM={shlex.quote(m['cm'])} CM_HB={shlex.quote(' '.join(m['cm_hb']))} "
      f"ENGINE={shlex.quote(m.get('engine') or '')}")
PY
)"
if [ -z "${RM:-}" ] || [ ! -s "$CNF" ]; then
  echo "sandbox_client.sh: could not read the sandbox's MetaDB from \`$PY -m sandbox status --json\`" \
       "(is the sandbox up; is OMSUP_PYTHON or $ROOT/.venv/bin/python the project's interpreter?)" >&2
  exit 1
fi
NODES=$(ls "$S/nodes")
sql() { mysql --defaults-extra-file="$CNF" "$@"; }
