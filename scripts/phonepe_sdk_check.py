"""PhonePe's official Python SDK (PyPI phonepe-pg-sdk-python, PG v2 StandardCheckoutClient)
against the parkpay PhonePe simulator: an independent check that the simulator speaks PG v2 as
PhonePe's own client expects it.

Run by scripts/phonepe-sdk-check.sh, which installs the pinned SDK into .tools/phonepe-sdk-venv,
starts the simulator and passes everything below in the environment:

  SDK_CHECK_SIM_URL          the simulator's base URL (http://127.0.0.1:PORT)
  SDK_CHECK_CLIENT_ID, SDK_CHECK_CLIENT_SECRET, SDK_CHECK_CLIENT_VERSION
                             the OAuth client the simulator was started with
  SDK_CHECK_MERCHANT_ID      the merchant id the simulator's webhooks carry
  SDK_CHECK_TOKEN_LIFETIME_S the simulator's token lifetime
  SDK_CHECK_WEBHOOK_URL      where the simulator sends webhooks: this script listens there
  SDK_CHECK_WEBHOOK_USERNAME, SDK_CHECK_WEBHOOK_PASSWORD
                             what the merchant configured (the SDK checks the webhook with them)

The SDK has no base-URL setting: its SANDBOX PG and OAuth hosts are module constants, replaced
here at run time by the simulator's URL before any client exists. Every step prints one line;
any wrong answer stops the run with a message and exit status 1. The last line is "ok: ...".
"""

import html.parser
import json
import logging
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CheckFailed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise CheckFailed(what)


def equal(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def step(text):
    print(f"  {text}", flush=True)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise CheckFailed(f"{name} is not set (run scripts/phonepe-sdk-check.sh)")
    return value


# ---- the webhook receiver: a tiny HTTP server at SDK_CHECK_WEBHOOK_URL ---------------------


class Received:
    """Webhooks the simulator POSTed, in arrival order: (Authorization header, raw body text)."""

    def __init__(self):
        self.items = queue.Queue()
        self.count = 0


def start_receiver(webhook_url):
    url = urllib.parse.urlsplit(webhook_url)
    check(url.scheme == "http" and url.hostname == "127.0.0.1" and url.port,
          f"webhook URL {webhook_url} must be http://127.0.0.1:PORT/...")
    received = Received()
    hook_path = url.path or "/"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8")
            if self.path != hook_path:
                self.send_response(404)
                self.end_headers()
                return
            received.count += 1
            received.items.put((self.headers.get("Authorization"), body, self.headers.get("Content-Type")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):  # noqa: N802 — the merchant's redirect URL, should a browser follow it
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"back at the merchant\n")

        def log_message(self, *args):
            pass

    try:
        server = ThreadingHTTPServer(("127.0.0.1", url.port), Handler)
    except OSError as e:
        raise CheckFailed(f"cannot listen for webhooks on 127.0.0.1:{url.port}: {e}")
    threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
    return server, received


def next_webhook(received, what, timeout=15.0):
    try:
        return received.items.get(timeout=timeout)
    except queue.Empty:
        raise CheckFailed(f"no webhook arrived within {timeout:.0f} s ({what})")


# ---- plain HTTP for the pay page and the control API ---------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


http = urllib.request.build_opener(NoRedirect)


def request(method, url, body=None, content_type=None):
    """(status, headers, text) of one request; HTTP errors are answers too."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with http.open(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


class PayPage(html.parser.HTMLParser):
    """The forms of the hosted pay page: [(method, action, {hidden inputs}, button text)]."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self._form = None
        self._in_button = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = [a.get("method", "get").lower(), a.get("action"), {}, ""]
        elif tag == "input" and self._form is not None and a.get("type") == "hidden":
            self._form[2][a.get("name")] = a.get("value", "")
        elif tag == "button" and self._form is not None:
            self._in_button = True

    def handle_data(self, data):
        if self._in_button:
            self._form[3] += data.strip()

    def handle_endtag(self, tag):
        if tag == "button":
            self._in_button = False
        elif tag == "form" and self._form is not None:
            self.forms.append(tuple(self._form))
            self._form = None


# ---- the check -----------------------------------------------------------------------------


def main():
    base = env("SDK_CHECK_SIM_URL").rstrip("/")
    client_id = env("SDK_CHECK_CLIENT_ID")
    client_secret = env("SDK_CHECK_CLIENT_SECRET")
    client_version = int(env("SDK_CHECK_CLIENT_VERSION"))
    merchant_id = env("SDK_CHECK_MERCHANT_ID")
    token_lifetime = int(env("SDK_CHECK_TOKEN_LIFETIME_S"))
    webhook_url = env("SDK_CHECK_WEBHOOK_URL")
    hook_user = env("SDK_CHECK_WEBHOOK_USERNAME")
    hook_password = env("SDK_CHECK_WEBHOOK_PASSWORD")

    # The SDK types OauthResponse.expires_in (and refresh_token) as non-optional, while PhonePe
    # documents `"expires_in": null` in the token answer: dataclasses_json warns on every token.
    warnings.filterwarnings("ignore", message=r".*NoneType.*object value of non-optional type",
                            category=RuntimeWarning)

    import phonepe
    import phonepe.sdk.pg.common.constants.base_urls as sdk_base_urls
    import phonepe.sdk.pg.env as sdk_env

    # The SDK reads its hosts through phonepe.sdk.pg.env's module globals (imported by name from
    # base_urls): patch both, before any client is built (the client fetches a token at once).
    for module in (sdk_base_urls, sdk_env):
        for name in ("SANDBOX_PG_BASE_URL", "SANDBOX_OAUTH_BASE_URL", "SANDBOX_EVENT_INGESTION_BASE_URL"):
            setattr(module, name, base)

    from phonepe.sdk.pg.common.exceptions import PhonePeException, UnauthorizedAccess
    from phonepe.sdk.pg.common.models.request.meta_info import MetaInfo
    from phonepe.sdk.pg.common.models.request.refund_request import RefundRequest
    from phonepe.sdk.pg.common.models.response.rails.upi_payment_rail import UpiPaymentRail
    from phonepe.sdk.pg.env import Env, get_oauth_base_url, get_pg_base_url
    from phonepe.sdk.pg.payments.v2.models.request.standard_checkout_pay_request import StandardCheckoutPayRequest
    from phonepe.sdk.pg.payments.v2.standard_checkout_client import StandardCheckoutClient

    equal(get_pg_base_url(Env.SANDBOX), base, "SDK SANDBOX PG base URL after the patch")
    equal(get_oauth_base_url(Env.SANDBOX), base, "SDK SANDBOX OAuth base URL after the patch")
    step(f"SDK phonepe-pg-sdk-python {phonepe.__version__}: SANDBOX PG and OAuth hosts patched to {base}")

    server, received = start_receiver(webhook_url)
    step(f"webhook receiver listening at {webhook_url}")

    def call(what, fn, *args, **kwargs):
        """An SDK call; an exception it raises (an HTTP error answer) fails the check, named."""
        try:
            return fn(*args, **kwargs)
        except PhonePeException as e:
            raise CheckFailed(f"{what}: the SDK raised {type(e).__name__} (HTTP {e.http_status_code}, "
                              f"code {e.code}, message {e.message!r})")

    def control(method, path, body=None):
        status, _, text = request(method, f"{base}{path}", json.dumps(body) if body is not None else None,
                                  "application/json" if body is not None else None)
        return status, (json.loads(text) if text.strip().startswith(("{", "[")) else text)

    status, tokens_before = control("GET", "/_sim/v2/tokens")
    equal(status, 200, "GET /_sim/v2/tokens")

    # 1. OAuth. A wrong secret is refused when the client is built (SDK 3: eager token fetch).
    # The SDK logs that refusal as errors on the root logger: silenced for this one expected case.
    logging.disable(logging.ERROR)
    try:
        bad = StandardCheckoutClient(client_id=client_id, client_version=client_version,
                                     client_secret=client_secret + "-wrong", env=Env.SANDBOX,
                                     should_publish_events=False)
        bad.close()
        raise CheckFailed("a client with a wrong client secret was built: the simulator issued it a token")
    except PhonePeException as e:
        check(isinstance(e, UnauthorizedAccess), f"wrong client secret: the SDK raised {type(e).__name__}, "
              f"not UnauthorizedAccess (HTTP {e.http_status_code}, code {e.code})")
        equal(e.http_status_code, 401, "wrong client secret: HTTP status")
        equal(e.code, "INVALID_CLIENT", "wrong client secret: error code")
    finally:
        logging.disable(logging.NOTSET)
    step("oauth: a wrong client secret is refused (401 INVALID_CLIENT) when the SDK client is built")

    client = call("building the SDK client (token fetch)", StandardCheckoutClient.get_instance,
                  client_id=client_id, client_secret=client_secret, client_version=client_version,
                  env=Env.SANDBOX, should_publish_events=False)
    equal(client._http_command._host_url, base, "the SDK client's PG host")
    equal(client._token_service._http_command._host_url, base, "the SDK client's OAuth host")
    check(not client.should_publish_events, "the SDK client must publish no events")
    token = client._token_service.cached_token_data
    check(token is not None and token.access_token, "the SDK client holds no access token after construction")
    equal(token.token_type, "O-Bearer", "token_type")
    equal(token.expires_at - token.issued_at, token_lifetime, "token lifetime (expires_at - issued_at), seconds")
    check(abs(token.issued_at - time.time()) < 120, f"issued_at {token.issued_at} is not about now (epoch seconds)")
    status, tokens_after = control("GET", "/_sim/v2/tokens")
    equal(tokens_after["issued"] - tokens_before["issued"], 1, "tokens the simulator issued for the good client")
    equal(tokens_after["requests"] - tokens_before["requests"], 2, "token requests (wrong secret, then the good one)")
    step(f"oauth: token issued to {client_id} (version {client_version}), O-Bearer, lifetime {token_lifetime} s")

    # 2. Pay.
    run = uuid.uuid4().hex[:12]
    order_id = f"SDKCHK-{run}"
    amount = 23456
    return_url = urllib.parse.urljoin(webhook_url, "/return")
    pay_request = StandardCheckoutPayRequest.build_request(
        merchant_order_id=order_id, amount=amount, redirect_url=return_url,
        meta_info=MetaInfo.build_meta_info(udf1="parkpay-sdk-check", udf2=run))
    paid = call("pay", client.pay, pay_request)
    check(paid.order_id, "pay: no orderId")
    equal(paid.state, "PENDING", "pay: state")
    check(paid.redirect_url and paid.redirect_url.startswith(f"{base}/pay/"),
          f"pay: redirectUrl {paid.redirect_url!r} is not the simulator's pay page")
    now_ms = time.time() * 1000
    check(paid.expire_at and now_ms < paid.expire_at <= now_ms + 3600 * 1000 + 60_000,
          f"pay: expireAt {paid.expire_at} is not epoch ms within the next hour")
    step(f"pay: order {order_id} ({amount} paise) → orderId {paid.order_id}, PENDING, "
         f"redirectUrl {paid.redirect_url}")

    pending = call("order status before paying", client.get_order_status, order_id)
    equal(pending.state, "PENDING", "order status before paying: state")
    equal(pending.payment_details or [], [], "order status before paying: paymentDetails")

    # 3. The hosted pay page, as a browser: GET it, submit its "Pay" form.
    status, _, page = request("GET", paid.redirect_url)
    equal(status, 200, "GET pay page")
    check(order_id in page, "the pay page does not show the merchantOrderId")
    check("234.56" in page, "the pay page does not show the amount (₹234.56)")
    parser = PayPage()
    parser.feed(page)
    pay_forms = [f for f in parser.forms if f[3] == "Pay"]
    equal(len(pay_forms), 1, "forms with a 'Pay' button on the pay page")
    method, action, fields, _ = pay_forms[0]
    equal(method, "post", "the Pay form's method")
    target = urllib.parse.urljoin(paid.redirect_url, action) if action else paid.redirect_url
    status, headers, _ = request("POST", target, urllib.parse.urlencode(fields),
                                 "application/x-www-form-urlencoded")
    equal(status, 303, "submitting the Pay form: HTTP status (REDIRECT to the merchant)")
    equal(headers.get("Location"), return_url, "submitting the Pay form: Location")
    step(f"pay page: GET shows the order, its Pay form ({fields}) submitted → 303 to {return_url}")

    # 4. Order status.
    st = call("order status", client.get_order_status, order_id)
    equal(st.state, "COMPLETED", "order status: state")
    equal(st.amount, amount, "order status: amount (paise)")
    equal(st.order_id, paid.order_id, "order status: orderId")
    check(st.meta_info is not None and st.meta_info.udf1 == "parkpay-sdk-check" and st.meta_info.udf2 == run,
          f"order status: metaInfo {st.meta_info!r} is not what was sent")
    equal(len(st.payment_details or []), 1, "order status: paymentDetails entries")
    attempt = st.payment_details[0]
    equal(attempt.state, "COMPLETED", "order status: paymentDetails[0].state")
    equal(attempt.amount, amount, "order status: paymentDetails[0].amount")
    check(attempt.transaction_id, "order status: paymentDetails[0].transactionId is empty")
    check(attempt.timestamp and abs(attempt.timestamp - time.time() * 1000) < 120_000,
          f"order status: paymentDetails[0].timestamp {attempt.timestamp} is not epoch ms of about now")
    check(isinstance(attempt.rail, UpiPaymentRail),
          f"order status: paymentDetails[0].rail {attempt.rail!r} is not the SDK's UPI rail")
    check(attempt.rail.utr and attempt.rail.utr.isdigit() and len(attempt.rail.utr) == 12,
          f"order status: paymentDetails[0].rail.utr {attempt.rail.utr!r} is not a 12-digit UTR")
    step(f"order status: COMPLETED, {st.amount} paise, orderId {st.order_id}, "
         f"attempt {attempt.transaction_id} {attempt.payment_mode.value if attempt.payment_mode else None} COMPLETED")

    # 5. The order webhook the simulator sent, validated by the SDK.
    def validate(what, event, state, id_field, id_value, extra):
        auth, body, content_type = next_webhook(received, what)
        check(content_type and content_type.startswith("application/json"),
              f"{what}: Content-Type {content_type!r}")
        check(auth, f"{what}: no Authorization header")
        try:
            cb = client.validate_callback(username=hook_user, password=hook_password,
                                          callback_header_data=auth, callback_response_data=body)
        except PhonePeException as e:
            raise CheckFailed(f"{what}: the SDK's validate_callback refused the webhook the simulator sent "
                              f"(HTTP {e.http_status_code} {e.message}): its Authorization {auth!r} is not "
                              "sha256(username:password) of the configured webhook credentials")
        equal(cb.event, event, f"{what}: event")
        p = cb.payload
        check(p is not None, f"{what}: no payload")
        equal(p.state, state, f"{what}: payload.state")
        equal(getattr(p, id_field), id_value, f"{what}: payload.{id_field}")
        equal(p.merchant_id, merchant_id, f"{what}: payload.merchantId")
        for field, value in extra.items():
            equal(getattr(p, field), value, f"{what}: payload.{field}")
        # PhonePe: rely on `event`; `type` is deprecated (the simulator sends none, so the SDK's
        # `type` is None). Should one come, it must name the same event (CHECKOUT_ORDER_COMPLETED…).
        check(cb.type is None or cb.type.value.lower().replace("_", ".") == event,
              f"{what}: type {cb.type!r} does not match event {event!r}")
        # A wrong password (and a wrong username) must be refused by the SDK.
        for user, password in ((hook_user, hook_password + "x"), (hook_user + "x", hook_password)):
            try:
                client.validate_callback(username=user, password=password,
                                         callback_header_data=auth, callback_response_data=body)
                raise CheckFailed(f"{what}: the SDK accepted the webhook with a wrong username or password")
            except PhonePeException as e:
                equal(e.http_status_code, 417, f"{what}: the SDK's refusal of wrong credentials")
        return p

    p = validate("order webhook", "checkout.order.completed", "COMPLETED", "merchant_order_id", order_id,
                 {"order_id": paid.order_id, "amount": amount})
    equal(len(p.payment_details or []), 1, "order webhook: paymentDetails entries")
    hooked = p.payment_details[0]
    equal(hooked.transaction_id, attempt.transaction_id, "order webhook: paymentDetails[0].transactionId")
    equal(getattr(hooked.rail, "utr", None), attempt.rail.utr, "order webhook: paymentDetails[0].rail.utr")
    step("webhook: checkout.order.completed received; validate_callback accepts it (state COMPLETED, "
         f"{amount} paise, merchantId {merchant_id}); a wrong password or username is refused (417)")

    # 6. Refund, part of the order.
    refund_id = f"SDKCHK-R-{run}"
    refund_amount = 10000
    refund = call("refund", client.refund, RefundRequest.build_refund_request(
        merchant_refund_id=refund_id, amount=refund_amount, original_merchant_order_id=order_id))
    check(refund.refund_id, "refund: no refundId")
    equal(refund.amount, refund_amount, "refund: amount")
    equal(refund.state, "PENDING", "refund: state")
    step(f"refund: {refund_id} ({refund_amount} of {amount} paise) → refundId {refund.refund_id}, PENDING")

    validate("refund accepted webhook", "pg.refund.accepted", "CONFIRMED", "merchant_refund_id", refund_id,
                 {"refund_id": refund.refund_id, "original_merchant_order_id": order_id, "amount": refund_amount})
    step("webhook: pg.refund.accepted received and validated (state CONFIRMED)")

    rs = call("refund status", client.get_refund_status, refund_id)
    check(rs.state in ("PENDING", "CONFIRMED", "COMPLETED"), f"refund status: state {rs.state!r}")
    equal(rs.merchant_refund_id, refund_id, "refund status: merchantRefundId")
    equal(rs.original_merchant_order_id, order_id, "refund status: originalMerchantOrderId")
    equal(rs.amount, refund_amount, "refund status: amount")
    first_state = rs.state
    settled_by_hand = False
    if rs.state != "COMPLETED":
        status, body = control("POST", f"/_sim/refunds/{refund_id}/settle", {"outcome": "success"})
        equal(status, 200, f"POST /_sim/refunds/{refund_id}/settle ({body})")
        settled_by_hand = True
    deadline = time.time() + 15
    while True:
        rs = call("refund status", client.get_refund_status, refund_id)
        if rs.state == "COMPLETED" or time.time() > deadline:
            break
        time.sleep(0.2)
    equal(rs.state, "COMPLETED", "refund status after settling: state")
    equal(rs.amount, refund_amount, "refund status after settling: amount")
    equal(rs.merchant_refund_id, refund_id, "refund status after settling: merchantRefundId")
    equal(rs.original_merchant_order_id, order_id, "refund status after settling: originalMerchantOrderId")
    equal(len(rs.payment_details or []), 1, "refund status after settling: paymentDetails entries")
    equal(rs.payment_details[0].state, "COMPLETED", "refund status after settling: paymentDetails[0].state")
    equal(rs.payment_details[0].amount, refund_amount, "refund status after settling: paymentDetails[0].amount")
    rail = rs.payment_details[0].rail
    check(isinstance(rail, UpiPaymentRail) and rail.utr,
          f"refund status after settling: paymentDetails[0].rail {rail!r} is not a UPI rail with a UTR")
    step(f"refund status: {first_state}, then COMPLETED ({refund_amount} paise)"
         + (f" after POST /_sim/refunds/{refund_id}/settle" if settled_by_hand else ""))

    validate("refund completed webhook", "pg.refund.completed", "COMPLETED", "merchant_refund_id", refund_id,
             {"refund_id": refund.refund_id, "original_merchant_order_id": order_id, "amount": refund_amount})
    step("webhook: pg.refund.completed received and validated (state COMPLETED)")

    st = call("order status after the refund", client.get_order_status, order_id)
    equal(st.state, "COMPLETED", "order status after a partial refund: state")
    equal(st.amount, amount, "order status after a partial refund: amount")

    time.sleep(0.5)
    check(received.items.empty(), f"unexpected further webhooks: {list(received.items.queue)}")
    equal(received.count, 3, "webhooks received in all")
    client.close()
    server.shutdown()
    print(f"ok: PhonePe's Python SDK {phonepe.__version__} (StandardCheckoutClient, SANDBOX) against the "
          "simulator: oauth, pay, pay page, order status, refund, refund status, 3 webhooks validated")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # the SDK's own exceptions (an HTTP error, a parse error) are failures too
        import traceback
        traceback.print_exc()
        print(f"FAILED: {type(e).__name__}: {e}".rstrip(), file=sys.stderr)
        sys.exit(1)
