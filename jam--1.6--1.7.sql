-- jam 1.6 to 1.7: a service's failed packages and reports, and its
-- attestations by one attester, found through indexes.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.7'" to load this file. \quit

-- A page of one service's failed packages (jam_list_packages(service_id =>
-- ..., status => 'failed'), GET /jam/packages?service_id=&status=failed)
-- had two indexes to choose from, and both grew with the history: the
-- service's own, (service_id, seq), walked all its applied packages to find
-- the few failed ones (98 ms with 200,000), and (status, seq) walked every
-- other service's failed ones.  The same held for reports, and for a
-- token's page of failed packages, which is merged from each of its
-- services.  These partial indexes hold the failed rows only, so they cost
-- nothing where packages succeed; pending packages already have theirs
-- (jam_work_packages_service_pending_idx), and applied ones are the rows a
-- service's walk meets first.  The library names the status as a constant
-- in each list statement, which lets the plan use them.  Building them takes
-- a lock that holds off submits and processing until the update commits.
CREATE INDEX jam_work_packages_service_failed_idx ON jam_work_packages (service_id, seq)
    WHERE status = 'failed';
CREATE INDEX jam_work_reports_service_failed_idx ON jam_work_reports (service_id, seq)
    WHERE status = 'failed';

-- A page of one attester's attestations of one service
-- (jam_list_attestations(service_id => ..., attester => ...)), and a
-- token's page of one attester's attestations, merged from its services,
-- walked either the service's attestations, where the node's one per
-- report buries an external attester's few, or the attester's, among
-- those of every other service.  This index serves both at once; the
-- library walks it when it is there.  It costs one entry per attestation:
-- processing, which writes the node's, waits while it is built.
CREATE INDEX jam_attestations_service_attester_idx ON jam_attestations (service_id, attester, id);
