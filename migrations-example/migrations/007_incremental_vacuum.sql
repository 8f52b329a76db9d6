-- migrate:no-transaction
--
-- Let the file shrink after large deletes, and give back now the space the
-- old `users` table (006) left behind.
--
-- With auto_vacuum NONE (the default) freed pages stay in the file for
-- reuse. INCREMENTAL keeps the bookkeeping that lets the application
-- return them to the file system in small steps, when it chooses, with
-- `PRAGMA incremental_vacuum(N)`. A database created with tables already
-- in it can switch to INCREMENTAL only by being rebuilt with VACUUM, and
-- VACUUM cannot run inside a transaction: hence the directive on the first
-- line, which makes the framework run this file in autocommit mode.
--
-- Each statement commits on its own, so this file is written to be safe to
-- run again by hand if it is interrupted: both statements can be repeated.
-- VACUUM rewrites the whole file and needs as much free disk again.
PRAGMA auto_vacuum = INCREMENTAL;
VACUUM;
