-- BUG-12345: orders paid through the gateway kept status_code 9.
-- @database: ft_db
UPDATE orders SET status = 'PAID', status_code = 2 WHERE status_code = 9;
-- @database: middle_db
UPDATE order_sync s SET status_code = 2 WHERE status_code = 0;
