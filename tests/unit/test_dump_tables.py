"""MetaDB.dumped_tables: the tables whose CREATE TABLE a dump holds, read with grep on the backup host."""

from omsup.adapters.hosts import Host
from omsup.adapters.metadb import MetaDB

DUMP = """-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB
DROP TABLE IF EXISTS `oms_version`;
CREATE TABLE `oms_version` (
  `version` varchar(64) NOT NULL
);
INSERT INTO `oms_version` VALUES ('4.2.8-CE'),('x\\nCREATE TABLE `not_a_table` (');
CREATE TABLE `odd``name` (
  `id` int
);
/*!50001 CREATE TABLE `a_view` (
  `id` tinyint NOT NULL
) */;
-- Dump completed on 2026-12-07 10:00:00
"""


def test_the_tables_of_a_dump_are_its_create_table_lines_and_nothing_in_its_data(tmp_path):
    path = tmp_path / "rm.sql"
    path.write_text(DUMP)
    found = MetaDB.__new__(MetaDB).dumped_tables(Host("local://", "t"), str(path))
    assert found == {"oms_version", "odd`name", "a_view"}


def test_a_dump_without_a_table_has_none(tmp_path):
    path = tmp_path / "empty.sql"
    path.write_text("-- MariaDB dump 10.19\n/*!40101 SET NAMES utf8mb4 */;\n-- Dump completed on 2026-12-07\n")
    assert MetaDB.__new__(MetaDB).dumped_tables(Host("local://", "t"), str(path)) == set()


def test_a_dump_that_cannot_be_read_is_said_so(tmp_path):
    import pytest

    from omsup.errors import BackupProblem

    with pytest.raises(BackupProblem, match="could not be read: grep exited 2"):
        MetaDB.__new__(MetaDB).dumped_tables(Host("local://", "t"), str(tmp_path / "gone.sql"))
