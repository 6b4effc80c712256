/* Functions under DELIMITER $$ ; a multi-line comment
   with a ; semicolon and an ' apostrophe */
DROP DATABASE IF EXISTS ftsplit_func;
CREATE DATABASE ftsplit_func;
USE `ftsplit_func`;

DELIMITER $$

DROP FUNCTION IF EXISTS greet $$
CREATE FUNCTION greet(p_name VARCHAR(40)) RETURNS VARCHAR(80)
DETERMINISTIC
BEGIN
  DECLARE v_out VARCHAR(80);
  SET v_out = CONCAT('Hello, ', p_name, '; $$ is not the end here');
  RETURN v_out;
END $$

CREATE FUNCTION add_pct(p DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC
RETURN p * 1.10 $$

DELIMITER ;

SELECT greet('FT'), add_pct(100);
SELECT greet("it's") AS `greeting; with semicolon`;
DROP DATABASE ftsplit_func;
