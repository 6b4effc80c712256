DROP DATABASE IF EXISTS ftsplit_crlf;
CREATE DATABASE ftsplit_crlf;
USE ftsplit_crlf;
-- Windows line endings: CR LF everywhere
CREATE TABLE t (
  id INT,
  txt VARCHAR(100)
);
INSERT INTO t VALUES (1, 'multi
line; string');
DELIMITER //
CREATE PROCEDURE p()
BEGIN
  SELECT id, txt FROM t;
END//
DELIMITER ;
CALL p();
SELECT LENGTH(txt) FROM t;
DROP DATABASE ftsplit_crlf;
