-- 3.17.0: the 中台 (middle platform) database keeps a copy of order totals.
-- @database: middle_db
CREATE TABLE IF NOT EXISTS order_sync (
  order_id BIGINT NOT NULL PRIMARY KEY,
  amount DECIMAL(12, 2) NOT NULL,
  synced_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO order_sync (order_id, amount) VALUES (1, 120.50), (2, 88.00), (3, 42.00), (4, 10.00);
