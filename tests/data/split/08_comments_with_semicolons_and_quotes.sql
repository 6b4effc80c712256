-- A comment with a ; semicolon and an ' apostrophe (must not open a string)
# Hash comment; also with a " double quote
/* Block comment; with ' and " and ` inside */
DROP DATABASE IF EXISTS ftsplit_comments;
CREATE DATABASE ftsplit_comments; -- trailing comment after the delimiter; ' here
USE ftsplit_comments;
CREATE TABLE t (
  a INT, -- a's column; commented
  b INT  # b's column; commented
  , c INT /* c's; column */
);
INSERT INTO t /* inline; ' comment */ VALUES (1, 2, 3);
INSERT INTO t VALUES (4, /* multi-line; comment
   spanning ' lines */ 5, 6);
/* comment before */SELECT a FROM t WHERE a = 1;
SELECT 10--1 AS minus_minus_is_not_a_comment;
SELECT 10 -- 1
  AS dash_dash_space_is_a_comment;
SELECT 1 /* comment then delimiter */; SELECT 2;
SELECT 1/* glued */+2 AS glued, 'a'/* the client puts a space here */'b' AS concatenated;
SELECT /*! 42 */ AS conditional_without_version;
--no space after the dashes at the start of a statement is also a comment
SELECT a, b, c FROM t ORDER BY a;
DROP DATABASE ftsplit_comments;
