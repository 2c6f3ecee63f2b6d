-- A role and a database for llmgw on PostgreSQL, with the least it needs.
-- Run once, as a superuser, on the database server:
--
--     psql -v ON_ERROR_STOP=1 -f llmgw.sql
--     psql -c "ALTER ROLE llmgw PASSWORD '...'"     (or peer/cert auth)
--
-- llmgw makes and migrates its tables itself, the first time a host
-- connects (each migration in one transaction under an advisory lock, so
-- hosts that start together do not race).  It needs to create tables and
-- indexes in one schema of its own and to read and write them; nothing
-- else: no superuser, no CREATEDB, no CREATEROLE, no other schema.

CREATE ROLE llmgw LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    CONNECTION LIMIT 200;
CREATE DATABASE llmgw OWNER postgres ENCODING 'UTF8' TEMPLATE template0;

\connect llmgw

-- Nobody creates anything in the public schema; llmgw's tables live in
-- its own schema, which its role owns and finds first.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE llmgw FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE llmgw TO llmgw;
CREATE SCHEMA llmgw AUTHORIZATION llmgw;
ALTER ROLE llmgw IN DATABASE llmgw SET search_path = llmgw;
