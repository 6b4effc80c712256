-- Procedure under DELIMITER //: semicolons inside BEGIN ... END must not split.
DROP DATABASE IF EXISTS ftsplit_proc;
CREATE DATABASE ftsplit_proc CHARACTER SET utf8mb4;
USE ftsplit_proc;

CREATE TABLE upgrade_log (
  id INT AUTO_INCREMENT PRIMARY KEY,
  step VARCHAR(64) NOT NULL, -- which step; this ; is a comment
  note TEXT
);

DELIMITER //
CREATE PROCEDURE add_step(IN p_step VARCHAR(64))
BEGIN
  -- body comment; with ' an apostrophe
  DECLARE v_note TEXT DEFAULT 'step; done';
  INSERT INTO upgrade_log (step, note) VALUES (p_step, v_note);
  IF p_step = 'end//not' THEN
    SET v_note = "quoted // delimiter";
  END IF;
END//
DELIMITER ;

CALL add_step('first');
CALL add_step('end//not');
SELECT step, note FROM upgrade_log ORDER BY id;

delimiter //
CREATE PROCEDURE count_steps(OUT p_n INT) BEGIN SELECT COUNT(*) INTO p_n FROM upgrade_log; END//
CALL count_steps(@n)//   SELECT @n AS steps//
DELIMITER ;
DROP DATABASE ftsplit_proc;
