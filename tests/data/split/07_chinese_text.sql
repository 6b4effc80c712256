-- 中文注释：这里有分号；和撇号 ' 都不影响; 真的
DROP DATABASE IF EXISTS ftsplit_zh;
CREATE DATABASE ftsplit_zh CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE ftsplit_zh;
/* 多行注释；
   包含 ' 和 ; */
CREATE TABLE `客户` (
  `编号` INT PRIMARY KEY COMMENT '主键；自增',
  `名称` VARCHAR(50) NOT NULL COMMENT '客户名称'
) COMMENT='客户表; 升级脚本创建';
INSERT INTO `客户` VALUES (1, '张三；北京'), (2, '李四 -- 上海'), (3, '王五 # 广州'), (4, '表情 😀');
# 井号注释：也有 ; 和 '
SELECT `名称` AS 名字 FROM `客户` WHERE `名称` LIKE '%北京%';
SELECT CONCAT('结果：', COUNT(*)) FROM `客户`;
DROP DATABASE ftsplit_zh;
