-- jam 1.1 to 1.2: fair scheduling and the event stream.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.2'" to load this file. \quit
