-- aurora-node, version 3: a refresh whose answer was lost can be retried.
-- `replaced_by` is the token a refresh issued in this token's place. Presenting a used token again is a
-- retry (its answer was lost: a killed laptop, a dropped connection) while that replacement has never been
-- used; once the replacement has been used, presenting the old token again means a copy exists elsewhere,
-- and the family is revoked.
ALTER TABLE refresh_tokens ADD COLUMN replaced_by text;
