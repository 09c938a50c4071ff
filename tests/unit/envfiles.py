"""A valid environment file for tests that need one (no services behind it)."""

import copy

import yaml

BASE = {
    "name": "prod-eu",
    "container": "oms_428",
    "version": "4.2.8-CE",
    "packages": {"4.2.9-CE": "/home/admin/oms_4.2.9.tar.gz"},
    "metadb": {
        "host": "10.0.0.1",
        "port": 2881,
        "user": "root@oms_tenant",
        "password": {"env": "OMSUP_TEST_PW"},
        "rm": "rm_428",
        "cm": "cm_428",
    },
    "regions": [
        {
            "name": "hz",
            "cm_hb": "cm_hb_428",
            "nodes": [
                {"name": "n1", "ip": "10.0.0.2", "host": "ssh://admin@10.0.0.2", "docker": "ssh://admin@10.0.0.2"},
                {"name": "n2", "ip": "10.0.0.3", "host": "local://", "docker": "unix:///var/run/docker.sock"},
            ],
        }
    ],
    "backup": {"host": "local://", "dir": "/home/admin/backups"},
    "ha": {"perceive_store_client_checkpoint": False, "refetch_margin_min": 5},
    "console": {"port": 8089, "user": "admin", "password": {"env": "OMSUP_TEST_CONSOLE_PW"}},
    "state_dir": "/var/lib/omsup",
}


def write(tmp_path, doc=None, **changes):
    d = copy.deepcopy(doc if doc is not None else BASE)
    d.update(changes)
    p = tmp_path / "env.yaml"
    p.write_text(yaml.safe_dump(d))
    return p
