-- A realistic upgrade step: a procedure with a cursor, handlers, labels and dynamic SQL.
-- @database: ft_db
DROP DATABASE IF EXISTS ftsplit_cursor;
CREATE DATABASE ftsplit_cursor;
USE ftsplit_cursor;
CREATE TABLE src (id INT PRIMARY KEY, val VARCHAR(20));
CREATE TABLE dst (id INT PRIMARY KEY, val VARCHAR(40));
INSERT INTO src VALUES (1, 'a'), (2, 'b;c'), (3, 'd''e');

DELIMITER //
DROP PROCEDURE IF EXISTS copy_rows//
CREATE PROCEDURE copy_rows()
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE v_id INT;
  DECLARE v_val VARCHAR(20);
  DECLARE cur CURSOR FOR SELECT id, val FROM src ORDER BY id;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN cur;
  read_loop: LOOP
    FETCH cur INTO v_id, v_val;
    IF done THEN
      LEAVE read_loop;
    END IF;
    /* copy; with a marker */
    SET @sql = CONCAT('INSERT INTO dst VALUES (?, CONCAT(?, ''#copied''))');
    PREPARE stmt FROM @sql;
    SET @a = v_id, @b = v_val;
    EXECUTE stmt USING @a, @b;
    DEALLOCATE PREPARE stmt;
  END LOOP;
  CLOSE cur;
END//
DELIMITER ;

CALL copy_rows();
SELECT id, val FROM dst ORDER BY id;
DROP DATABASE ftsplit_cursor;
