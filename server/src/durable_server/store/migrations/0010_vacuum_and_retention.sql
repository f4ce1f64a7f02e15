-- The hot tables: rows come and go with every step, so dead rows pile up fast. Vacuum
-- them after a fixed number of changes rather than a share of a table that stays small,
-- and without the cost-based pauses, so scans never wade through thousands of dead rows.
ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
                       autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 2000,
                       autovacuum_vacuum_cost_delay = 0);
ALTER TABLE waits SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
                       autovacuum_vacuum_cost_delay = 0);
ALTER TABLE groups SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
                        autovacuum_vacuum_cost_delay = 0);
ALTER TABLE lanes SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
                       autovacuum_vacuum_cost_delay = 0);
ALTER TABLE timers SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
                        autovacuum_vacuum_cost_delay = 0);
-- Executions are updated several times each (status, step counter): vacuum and analyze
-- them sooner than the default 20% / 10% of the table.
ALTER TABLE executions SET (autovacuum_vacuum_scale_factor = 0.02,
                            autovacuum_analyze_scale_factor = 0.02);

-- Retention finds the longest-finished executions first.
CREATE INDEX executions_finished ON executions (finished_at) WHERE finished_at IS NOT NULL;
