def test_valid_token_reaches_the_view(oidc_settings, issuer, call):
    response = call(issuer.token(sub="alice", role="admin", tenant_id="acme"))
    assert response.status_code == 200, response.content
    assert response.json()["sub"] == "alice"
