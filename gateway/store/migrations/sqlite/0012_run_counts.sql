-- How many runs each (namespace, workspace) has in each state, kept by triggers in the same
-- transaction as the write that changes it. As count(*) over the runs' indexes these reads
-- grew with the runs counted: the run gauges' per-state counts of every live run scanned the
-- whole index, ended runs included (36-41 ms at 200,000 runs, every refresh, holding up the
-- ledger's writes meanwhile), and a capped workspace's active runs, read on every accepted
-- submit, took 187-203 us at 2,000 active. From this table each is a few rows (24-29 us,
-- 17-20 us: tests/bench/bench_counts.py).
--
-- SQLite only: it has one writer at a time, so the hot rows cost nothing in contention. On
-- PostgreSQL every replica's writes of a namespace would queue on the same rows.
CREATE TABLE run_counts (
    namespace TEXT    NOT NULL,
    workspace TEXT    NOT NULL,
    state     TEXT    NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (namespace, state, workspace)
) WITHOUT ROWID;

-- A workspace's active runs across its namespaces (for its cap) and the per-state totals.
CREATE INDEX run_counts_workspace ON run_counts (workspace, state);

INSERT INTO run_counts (namespace, workspace, state, n)
SELECT namespace, workspace, state, count(*) FROM runs GROUP BY namespace, workspace, state;

CREATE TRIGGER run_counts_insert AFTER INSERT ON runs
BEGIN
    INSERT INTO run_counts (namespace, workspace, state, n)
    VALUES (NEW.namespace, NEW.workspace, NEW.state, 1)
    ON CONFLICT (namespace, state, workspace) DO UPDATE SET n = n + 1;
END;

-- Only the state changes today; namespace and workspace are here so that no write of runs,
-- however it came, can leave the counts wrong.
CREATE TRIGGER run_counts_update AFTER UPDATE OF namespace, workspace, state ON runs
WHEN OLD.namespace IS NOT NEW.namespace OR OLD.workspace IS NOT NEW.workspace
     OR OLD.state IS NOT NEW.state
BEGIN
    UPDATE run_counts SET n = n - 1
    WHERE namespace = OLD.namespace AND workspace = OLD.workspace AND state = OLD.state;
    INSERT INTO run_counts (namespace, workspace, state, n)
    VALUES (NEW.namespace, NEW.workspace, NEW.state, 1)
    ON CONFLICT (namespace, state, workspace) DO UPDATE SET n = n + 1;
END;

-- lakegate deletes no run; an operator who does keeps the counts right all the same.
CREATE TRIGGER run_counts_delete AFTER DELETE ON runs
BEGIN
    UPDATE run_counts SET n = n - 1
    WHERE namespace = OLD.namespace AND workspace = OLD.workspace AND state = OLD.state;
END;
