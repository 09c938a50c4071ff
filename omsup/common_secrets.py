"""Secrets too common to be masked safely: common passwords, and words that appear in every report.

A secret is masked wherever it appears in output (omsup/redact.py). One that is an ordinary word,
or a common password built on one (``Password1``, ``Oceanbase2024!``), would also mask that word in
every log line, error and report: ``password`` would hide half of a MySQL error message, ``backup``
every step title. Such a secret is refused when the environment file is loaded (envfile.py),
before anything runs. The lists are short on purpose: the most used passwords of the public lists
(NCSC's "100k most used", SecLists' top entries), the product's and this project's vocabulary, and
common English words of eight letters or more.
"""

from __future__ import annotations

COMMON_PASSWORDS = frozenset(
    """
123456 123456789 12345678 1234567890 1234567 12345 1234 111111 000000 123123 654321 666666 121212 112233 555555
11111111 987654321 7777777 123321 159753 1q2w3e4r 1qaz2wsx qwerty qwerty123 qwertyuiop qwe123 123qwe qazwsx
asdfgh asdfghjkl zxcvbn zxcvbnm abc123 abc12345 abcd1234 aaaaaa a1b2c3d4 password passw0rd p@ssw0rd p@ssword
password1 password123 pass pass123 pass1234 letmein welcome welcome1 welcome123 changeme changeit default secret
secret123 admin admin123 admin1234 administrator root toor guest test test123 testing oracle mysql mysql123 oceanbase
iloveyou trustno1 sunshine princess dragon monkey football baseball basketball soccer hockey superman batman
starwars shadow master michael jennifer jordan hunter buster harley tigger charlie robert thomas daniel andrew
george jessica michelle ashley nicole amanda matthew joshua summer winter freedom thunder matrix access login
killer pepper ginger cheese maggie chelsea yankees dallas austin taylor computer internet whatever nothing
loveme lovely flower hello helloworld letmein1 starwars1 qwerty1 zaq12wsx q1w2e3r4 1q2w3e4r5t passwort motdepasse
""".split()
)

COMMON_WORDS = frozenset(
    """
account accounts admin administrator access backup backups cluster clusters company computer config configuration
connector connectors console container containers control database databases default deployment development
migration migrations monitor network oceanbase office operator password passwords preflight production project
projects region regions release rollback runbook runbooks secret secrets security server servers service services
staging station storage system systems tenant tenants upgrade upgrades version versions heartbeat heartbeats
metadata metadb manager management master monday tuesday wednesday thursday friday saturday sunday january
february march april august september october november december spring summer autumn winter welcome hello world
student teacher business customer customers internet software hardware keyboard language learning research
students question questions something everything anything information important possible different following
national american international government president children together available business community industry
interest material medicine morning evening personal political practice pressure problem program programs property
quality reference relation remember response science section service standard strategy structure success support
technology telephone training transfer treatment variable weather whatever yourself
""".split()
)

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_EDGES = "0123456789!@#$%^&*()_+-=.,?~ "


def too_common(secret: str) -> str | None:
    """Why ``secret`` is too common to be masked safely (a phrase for a message), or None."""
    low = secret.lower()
    if low in COMMON_PASSWORDS:
        return "one of the most used passwords"
    core = low.strip(_EDGES)
    if core and len(low) - len(core) <= 6:
        for c in (core, core.translate(_LEET)):
            if c in COMMON_PASSWORDS or c in COMMON_WORDS:
                return "a common password or word with a few digits or symbols around it"
    return None
