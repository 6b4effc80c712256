-- 3.17.0: order tables of the FT database.
-- @database: ft_db
CREATE TABLE IF NOT EXISTS orders (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer VARCHAR(64) NOT NULL,
  amount DECIMAL(12, 2) NOT NULL DEFAULT 0,
  status VARCHAR(16) NOT NULL DEFAULT 'NEW',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='订单表';

CREATE TABLE IF NOT EXISTS user_permissions (
  user_id BIGINT NOT NULL,
  permission VARCHAR(64) NOT NULL,
  PRIMARY KEY (user_id, permission)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO orders (customer, amount, status) VALUES
  ('张三', 120.50, 'NEW'), ('李四', 88.00, 'PAID'), ('Acme; Inc.', 42.00, 'paid'), ('O''Brien', 10.00, 'NEW');
INSERT INTO user_permissions VALUES (1001, 'order.read'), (1001, 'order.write'), (1002, 'order.read');
