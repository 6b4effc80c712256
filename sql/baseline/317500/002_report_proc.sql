-- 3.17.5: a report procedure (DELIMITER, BEGIN … END) and a daily summary table.
-- @database: ft_db
CREATE TABLE IF NOT EXISTS order_daily_summary (
  day DATE NOT NULL PRIMARY KEY,
  orders INT NOT NULL,
  amount DECIMAL(14, 2) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

DROP PROCEDURE IF EXISTS refresh_order_summary;
DELIMITER //
CREATE PROCEDURE refresh_order_summary()
BEGIN
  -- a ';' inside the body does not end the statement
  DELETE FROM order_daily_summary;
  INSERT INTO order_daily_summary (day, orders, amount)
    SELECT DATE(created_at), COUNT(*), SUM(amount) FROM orders GROUP BY DATE(created_at);
END //
DELIMITER ;
CALL refresh_order_summary();
