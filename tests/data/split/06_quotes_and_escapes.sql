DROP DATABASE IF EXISTS ftsplit_quotes;
CREATE DATABASE ftsplit_quotes;
USE ftsplit_quotes;
CREATE TABLE `we;ird``name` (`col -- 1` VARCHAR(200), `col#2` VARCHAR(200));
INSERT INTO `we;ird``name` VALUES ('it''s; fine', "double ""quoted""; fine");
INSERT INTO `we;ird``name` VALUES ('backslash \' quote; -- not a comment', "back \" slash # not a comment");
INSERT INTO `we;ird``name` VALUES ('ends with backslash \\', 'slash-star /* not a comment */ ;');
INSERT INTO `we;ird``name` VALUES ('percent %s and %% and %(name)s', 'tab\there, newline\nthere');
INSERT INTO `we;ird``name` VALUES ('a string
spanning; several
lines -- still a string', 'x');
INSERT INTO `we;ird``name` VALUES (\N, 'NULL spelled \\N');
SELECT `col -- 1`, `col#2` FROM `we;ird``name` WHERE `col -- 1` LIKE 'it%' OR `col#2` LIKE '%;%';
SELECT '\\', '\'', "\"", '\%', 'a''', """b";
DROP DATABASE ftsplit_quotes;
