-- jam 1.3 to 1.4: a tenant's services found without reading every service.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.4'" to load this file. \quit

-- A tenant's token sees its tenant's services only, and every call it
-- makes that lists, claims or reports across services first asks which
-- those are (select_tenant_services, auth.c).  Without an index that was a
-- scan of jam_services, of every tenant's services and of the row versions
-- submits leave behind until VACUUM: 0.84 ms a call with 10,000 services,
-- growing with each service another tenant adds.  jam_services is updated
-- by every submit and every processed package, but never in tenant or
-- service_id, so those updates stay HOT: this index costs them nothing.
-- Services without a tenant (the operator's) are not in it.
--   jam_services
--     _tenant_idx (tenant, service_id)
--       WHERE tenant IS NOT NULL                 a tenant's services (auth.c)
CREATE INDEX jam_services_tenant_idx ON jam_services (tenant, service_id)
    WHERE tenant IS NOT NULL;
