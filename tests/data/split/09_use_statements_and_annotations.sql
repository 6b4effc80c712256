-- @database: ft_db
DROP DATABASE IF EXISTS ftsplit_use_a;
DROP DATABASE IF EXISTS ftsplit_use_b;
CREATE DATABASE ftsplit_use_a;
CREATE DATABASE ftsplit_use_b;
USE ftsplit_use_a;
CREATE TABLE t (id INT);
INSERT INTO t VALUES (1);
-- @database: ft_report
use `ftsplit_use_b`
CREATE TABLE t (id INT);
INSERT INTO t SELECT id + 1 FROM ftsplit_use_a.t;
  USE ftsplit_use_a -- client command: the comment goes with it
SELECT DATABASE(), COUNT(*) FROM t;
USE ftsplit_use_b; SELECT DATABASE(); USE ftsplit_use_a;
SELECT DATABASE();
-- @database: ft_db
DROP DATABASE ftsplit_use_a;
DROP DATABASE ftsplit_use_b;
