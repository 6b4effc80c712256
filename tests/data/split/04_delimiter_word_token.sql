# A delimiter made of a letter and slashes (d//), lower-case keyword, and back to ;
DROP DATABASE IF EXISTS ftsplit_word;
CREATE DATABASE ftsplit_word;
use ftsplit_word
CREATE TABLE t (id INT PRIMARY KEY, label VARCHAR(40));
delimiter d//
CREATE PROCEDURE fill()
BEGIN
  INSERT INTO t VALUES (1, 'd/ is fine');
  INSERT INTO t VALUES (2, 'and d// in a string too');
END d//
CALL fill() d// SELECT COUNT(*) FROM t d//
DeLiMiTeR ;
SELECT label FROM t ORDER BY id;
DROP DATABASE ftsplit_word;
