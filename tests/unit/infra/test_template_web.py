"""template.yaml's web page: a private bucket read only by CloudFront (origin access control), /v1/* to
the HTTP API uncached, and security headers on every answer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infra.local.aws import load_template

ROOT = Path(__file__).resolve().parents[3]
RESOURCES: dict[str, Any] = load_template(ROOT / "template.yaml")["Resources"]
DISTRIBUTION: dict[str, Any] = RESOURCES["WebDistribution"]["Properties"]["DistributionConfig"]
ORIGINS = {origin["Id"]: origin for origin in DISTRIBUTION["Origins"]}

# AWS managed policies (ids are the same in every account)
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def _behaviour(path_pattern: str) -> dict[str, Any]:
    matches = [b for b in DISTRIBUTION.get("CacheBehaviors", []) if b["PathPattern"] == path_pattern]
    assert len(matches) == 1, f"expected one cache behaviour for {path_pattern}"
    return matches[0]


def _csp_directives() -> dict[str, list[str]]:
    config = RESOURCES["WebSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
    policy = config["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    directives = {}
    for part in policy.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_page_origin_is_the_bucket_through_origin_access_control() -> None:
    web = ORIGINS["web"]
    assert web["DomainName"] == {"Fn::GetAtt": ["WebBucket", "RegionalDomainName"]}
    assert web["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
    assert web["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not the legacy OAI
    oac = RESOURCES["WebOriginAccessControl"]
    assert oac["Type"] == "AWS::CloudFront::OriginAccessControl"
    config = oac["Properties"]["OriginAccessControlConfig"]
    assert config["OriginAccessControlOriginType"] == "s3"
    assert config["SigningBehavior"] == "always"
    assert config["SigningProtocol"] == "sigv4"


def test_default_behaviour_serves_the_page_cached_over_https() -> None:
    default = DISTRIBUTION["DefaultCacheBehavior"]
    assert DISTRIBUTION["DefaultRootObject"] == "index.html"
    assert default["TargetOriginId"] == "web"
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["CachePolicyId"] == CACHING_OPTIMIZED
    assert default["ResponseHeadersPolicyId"] == {"Ref": "WebSecurityHeaders"}


def test_api_behaviour_goes_to_the_http_api_uncached() -> None:
    api = ORIGINS["api"]
    assert api["DomainName"] == {"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert "OriginAccessControlId" not in api

    v1 = _behaviour("/v1/*")
    assert v1["TargetOriginId"] == "api"
    assert v1["CachePolicyId"] == CACHING_DISABLED  # every answer is per request (201s, feedback)
    # Host stays CloudFront's out: API Gateway routes on its own host name
    assert v1["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST
    assert {"GET", "POST", "OPTIONS"} <= set(v1["AllowedMethods"])
    assert v1["ViewerProtocolPolicy"] in {"https-only", "redirect-to-https"}
    assert v1["ResponseHeadersPolicyId"] == {"Ref": "WebSecurityHeaders"}


def test_the_page_calls_only_its_own_origins_v1_paths() -> None:
    """Same origin in production too: the API base is empty and every call is under /v1/*."""
    html = (ROOT / "web" / "index.html").read_text(encoding="utf-8")
    assert 'name="moodtune-api"' not in html  # no other API origin configured: CORS never needed
    app = (ROOT / "web" / "app.js").read_text(encoding="utf-8")
    paths = re.findall(r"postJSON\(\s*[`\"']([^`\"']+)", app)
    assert len(paths) >= 2, "expected the recommendation and feedback calls"
    assert all(path.startswith("/v1/") for path in paths), paths
    assert app.count("fetch(") == 1  # the one in postJSON


def test_security_headers() -> None:
    config = RESOURCES["WebSecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
    headers = config["SecurityHeadersConfig"]
    assert headers["ContentTypeOptions"]["Override"] is True  # X-Content-Type-Options: nosniff
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] in {
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    }
    hsts = headers["StrictTransportSecurity"]
    assert int(hsts["AccessControlMaxAgeSec"]) >= 31536000  # one year at least
    assert hsts["IncludeSubdomains"] is True
    for header in ("ContentSecurityPolicy", "ContentTypeOptions", "FrameOptions", "StrictTransportSecurity"):
        assert headers[header]["Override"] is True, header


def test_content_security_policy_allows_only_the_pages_own_origin() -> None:
    csp = _csp_directives()
    assert csp["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src", "connect-src"):
        assert csp[directive] == ["'self'"], directive
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert not any("unsafe" in value for values in csp.values() for value in values)


def test_the_page_needs_nothing_the_policy_forbids() -> None:
    """No inline script, style or handler in web/*.html (the CSP would block them)."""
    for page in (ROOT / "web").glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"{page.name}: inline <script>"
        assert "<style" not in html, f"{page.name}: inline <style>"
        assert not re.search(r"\sstyle=", html), f"{page.name}: style attribute"
        assert not re.search(r"\son[a-z]+=", html), f"{page.name}: inline event handler"
        assert not re.search(r'(src|href)="(https?:)?//', html), f"{page.name}: a resource from elsewhere"


def test_bucket_is_private_and_encrypted() -> None:
    bucket = RESOURCES["WebBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "WebsiteConfiguration" not in bucket  # not an S3 website endpoint: CloudFront only
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]


def test_bucket_policy_lets_only_this_distribution_read() -> None:
    policy = RESOURCES["WebBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "WebBucket"}
    statements = policy["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"  # read only; no listing, no writes
    assert allow["Resource"] == {"Fn::Sub": "${WebBucket.Arn}/*"}
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert "${WebDistribution}" in source["Fn::Sub"]
    assert ":cloudfront::${AWS::AccountId}:distribution/" in source["Fn::Sub"]
    # anything addressed to everyone is a deny (TLS only), never an allow
    for statement in statements:
        if statement.get("Principal") == "*":
            assert statement["Effect"] == "Deny"


@pytest.mark.parametrize("output", ["WebUrl", "WebBucketName", "WebDistributionId"])
def test_outputs_that_make_deploy_reads(output: str) -> None:
    outputs = load_template(ROOT / "template.yaml")["Outputs"]
    assert output in outputs
