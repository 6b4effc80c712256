DROP DATABASE IF EXISTS ftsplit_multi;
CREATE
  DATABASE
    ftsplit_multi
;
USE ftsplit_multi;

CREATE TABLE orders (
  id BIGINT NOT NULL AUTO_INCREMENT,

  customer_id BIGINT NOT NULL,
  amount DECIMAL(12, 2) NOT NULL DEFAULT 0.00,
  status ENUM('new', 'paid', 'shipped') NOT NULL DEFAULT 'new',
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  KEY idx_customer (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO orders (customer_id, amount, status)
VALUES
  (1, 10.50, 'new'),
  (2, 20.00, 'paid'),

  (3, 30.25, 'shipped');

ALTER TABLE orders
  ADD COLUMN note VARCHAR(200) NULL AFTER status,
  ADD INDEX idx_status (status),
  MODIFY amount DECIMAL(14, 2) NOT NULL DEFAULT 0.00;

UPDATE orders
   SET note = CONCAT('order #', id, '; status=', status)
 WHERE status <> 'new'
;
SELECT id, note
  FROM orders
 ORDER BY id;
DROP DATABASE ftsplit_multi