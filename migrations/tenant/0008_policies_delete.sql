-- A policy can be removed, so its default applies again (DELETE /v1/policies/{name}).
GRANT DELETE ON policies TO {{agency_role}};
