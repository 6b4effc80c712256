/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */;
/*!40101 SET SQL_MODE='STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION' */;
-- 3.17.5: order status becomes a code; statuses are normalised.
-- @database: ft_db
ALTER TABLE orders ADD COLUMN status_code TINYINT NOT NULL DEFAULT 0 AFTER status;
UPDATE orders SET status = UPPER(status);
UPDATE orders SET status_code = CASE status WHEN 'NEW' THEN 1 WHEN 'PAID' THEN 2 ELSE 9 END;
CREATE INDEX idx_orders_status_code ON orders (status_code);
-- @database: middle_db
ALTER TABLE order_sync ADD COLUMN status_code TINYINT NOT NULL DEFAULT 0;
-- @database: ft_db
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
