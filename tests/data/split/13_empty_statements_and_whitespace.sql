

	
DROP DATABASE IF EXISTS ftsplit_ws;;;
   CREATE DATABASE ftsplit_ws   ;   USE ftsplit_ws   ;
;
		CREATE TABLE t (id INT)	;
  ;  ;
INSERT INTO t VALUES (1);INSERT INTO t VALUES (2);   INSERT INTO t VALUES (3);
DELIMITER $$
CREATE PROCEDURE p() BEGIN SELECT COUNT(*) FROM t; END;$$
$$
CALL p()$$
DELIMITER ;
SELECT id FROM t ORDER BY id   ;   -- trailing comment
DROP DATABASE ftsplit_ws;
