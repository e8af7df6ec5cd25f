-- Guarantees added after the first release: an approval is bound to the exact specs of its
-- plan (a digest, beside the plan text that people read), and a deploy records the process
-- groups it started so that whoever reaps it after a crash can end them first.
ALTER TABLE approval_requests ADD COLUMN IF NOT EXISTS plan_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN IF NOT EXISTS processes TEXT NOT NULL DEFAULT '[]';
