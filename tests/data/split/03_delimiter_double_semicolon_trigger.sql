-- mysqldump-style triggers: DELIMITER ;; and conditional comments around CREATE TRIGGER.
DROP DATABASE IF EXISTS ftsplit_trig;
CREATE DATABASE ftsplit_trig;
USE ftsplit_trig;
CREATE TABLE account (id INT PRIMARY KEY, balance DECIMAL(12,2) NOT NULL DEFAULT 0);
CREATE TABLE account_audit (id INT AUTO_INCREMENT PRIMARY KEY, account_id INT, delta DECIMAL(12,2));
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION' */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50003 TRIGGER account_bu BEFORE UPDATE ON account FOR EACH ROW
BEGIN
  IF NEW.balance <> OLD.balance THEN
    INSERT INTO account_audit (account_id, delta) VALUES (OLD.id, NEW.balance - OLD.balance);
  END IF;
END */;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
INSERT INTO account VALUES (1, 10.00), (2, 20.00);
UPDATE account SET balance = balance + 5 WHERE id = 1;
SELECT account_id, delta FROM account_audit;
DROP DATABASE ftsplit_trig;
