-- Overseas sites (US, EU, JP) keep times in UTC and show them in the site's zone.
-- @database: ft_db
CREATE TABLE IF NOT EXISTS site_settings (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
REPLACE INTO site_settings (name, value) VALUES ('time_zone', 'UTC'), ('display_zone', 'site');
