-- BUG-12346: report users need order.export.
-- @database: ft_db
INSERT INTO user_permissions (user_id, permission)
  SELECT user_id, 'order.export' FROM user_permissions WHERE permission = 'order.write';
