-- SOURCE / \. : the included files' statements in place; the DELIMITER the first one leaves is in force after it
CREATE DATABASE IF NOT EXISTS ftsplit_source;
USE ftsplit_source;
CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40));
SOURCE 16_source_a.inc;
INSERT INTO t (v) VALUES ('main: a left $$; in force')$$
DELIMITER ;
\. 16_source_c.inc
SELECT v FROM t ORDER BY id;
DROP DATABASE ftsplit_source;
