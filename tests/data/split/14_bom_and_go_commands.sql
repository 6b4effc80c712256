-- UTF-8 BOM at the start; \g and \G end statements too
DROP DATABASE IF EXISTS ftsplit_bom;
CREATE DATABASE ftsplit_bom\g
USE ftsplit_bom;
CREATE TABLE t (id INT, name VARCHAR(20));
INSERT INTO t VALUES (1, '\\g in a string')\g INSERT INTO t VALUES (2, 'two');
SELECT * FROM t\G
SELECT COUNT(*) AS n FROM t;
DROP DATABASE ftsplit_bom;
