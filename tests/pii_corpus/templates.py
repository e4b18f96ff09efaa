"""Templates of the corpus: what agents really see, with holes for sensitive values.

Three kinds, as they reach the pii_redaction processor: `prompt` (user turns and system prompts,
often with pasted mail, code or config), `completion` (assistant text, code, tool-call
arguments), `tool_output` (shell output such as `env`, `cat .env`, `git log`, logs, stack traces,
JSON from APIs). Markup is described in generate.py. Literal text here holds no labeled entity
type except inside [[TYPE:value]] marks (tests/test_pii_accuracy.py scans for strays); bare host
names (api.openai.com) are deliberately left unlabeled: they are not personal data, and
presidio's non-schema URL pattern flagging them counts against its precision, as it would
against ours. A URL or DSN that carries a password is labeled by its password only (labels never
overlap; a detector that redacts the whole URL still covers it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Callable, Union

# Holes («KEY») must survive serialization: no \u00ab escapes.
_dumps = partial(json.dumps, ensure_ascii=False)


@dataclass(frozen=True)
class Template:
    name: str
    kind: str   # prompt | completion | tool_output
    body: Union[str, Callable]   # markup, or record -> markup


# --- prompts --------------------------------------------------------------------------------------------

_PROMPTS = [
    Template("support_refund", "prompt",
             "Hi, I'm «PERSON». I was charged twice for order «order» on my card «CARD». Can you refund the "
             "duplicate charge of $«amount»? You can reach me at «PHONE» or «EMAIL». Thanks!"),
    Template("pasted_email_invoice", "prompt",
             "Draft a polite reply to this email, saying we'll pay by Friday:\n\n"
             "From: «PERSON#2» <«EMAIL#2»>\nTo: «PERSON» <«EMAIL»>\nDate: «date» «time»\n"
             "Subject: Invoice «int» overdue\n\n"
             "Hi «FIRST»,\n\nour invoice «int» for $«amount» is now 30 days overdue. Please transfer the amount to\n"
             "IBAN: «IBAN»\nAccount holder: «company»\n\nIf you have questions call me on «PHONE#2».\n\n"
             "Kind regards,\n«PERSON#2»\nAccounts receivable, «company»\n«ADDRESS»"),
    Template("python_401", "prompt",
             "why do I get 401 Unauthorized here?\n\n```python\nfrom openai import OpenAI\n\n"
             "client = OpenAI(api_key=\"«OPENAI»\")\nresp = client.chat.completions.create(\n"
             "    model=\"gpt-4o-mini\",\n    messages=[{\"role\": \"user\", \"content\": \"hello\"}],\n)\n"
             "print(resp.choices[0].message.content)\n```\nI copied the key from the dashboard an hour ago."),
    Template("dotenv_help", "prompt",
             "My app can't connect to the database after deploy. Here's the .env, what's wrong?\n\n```\n"
             "NODE_ENV=production\nPORT=3000\nDATABASE_URL=postgres://«user»:«PASSWORD»@«dbhost»:5432/orders\n"
             "STRIPE_SECRET_KEY=«STRIPE»\nANTHROPIC_API_KEY=«ANTHROPIC»\nSESSION_TTL=3600\n```\n"
             "The logs only say ECONNREFUSED."),
    Template("form_fill", "prompt",
             "Fill in the rental application with my details and return it as a table.\n"
             "Name: «PERSON»\nDate of birth: 19«int»\nSSN: «SSN»\nCurrent address: «ADDRESS»\nPhone: «PHONE»\n"
             "Email: «EMAIL»\nEmployer: «company»\nMonthly income: $«amount»"),
    Template("patient_note", "prompt",
             "Summarise this referral letter for the patient portal, plain language, max 80 words:\n\n"
             "Re: «PERSON», NHS number «NHS», DOB «date»\nSeen today in clinic by Dr «PERSON#2» (DEA «DEA#2»). "
             "Presents with recurring migraines since «date». Lives in «CITY» with her partner; contact «PHONE». "
             "Plan: start propranolol 40mg, review in 6 weeks."),
    Template("firewall_question", "prompt",
             "Our WAF keeps blocking «IP» and «IP#2», both are our office in «CITY». How do I allowlist them in "
             "nginx without opening the admin panel to everyone?"),
    Template("btc_payout", "prompt",
             "Send the payout of 0.042 BTC to my wallet «BTC» and email the receipt to «EMAIL». My name on the "
             "account is «PERSON»."),
    Template("translate", "prompt",
             "Translate to French, keep the formatting:\n\n\"Dear «PERSON», your appointment at our «CITY» office "
             "on «date» is confirmed. If you need to reschedule, call «PHONE» or write to «EMAIL».\""),
    Template("curl_anthropic", "prompt",
             "this curl works on my laptop but not in CI, any idea?\n\n"
             "curl [[URL:https://api.anthropic.com/v1/messages]] \\\n  -H \"x-api-key: «ANTHROPIC»\" \\\n"
             "  -H \"anthropic-version: 2023-06-01\" \\\n  -H \"content-type: application/json\" \\\n"
             "  -d '{\"model\": \"claude-sonnet-4-5\", \"max_tokens\": 256, \"messages\": [{\"role\": \"user\", "
             "\"content\": \"ping\"}]}'"),
    Template("car_rental", "prompt",
             "Book me a car in «PLACE» for next weekend. Driver's license number «DL», passport «PASSPORT», "
             "and use the Visa «CARD». Reservation under «PERSON», mobile «PHONE»."),
    Template("crm_update", "prompt",
             "Update the CRM entry for «PERSON»: she moved to «ADDRESS». New mobile «PHONE», new email «EMAIL». "
             "Keep the old number «PHONE#2» as secondary."),
    Template("jwt_decode", "prompt",
             "Decode this token and tell me when it expires and which scopes it has:\n\n«JWT»"),
    Template("github_token_check", "prompt",
             "Is this token still valid? The release workflow fails with 'Bad credentials'.\n"
             "GITHUB_TOKEN=«GITHUB»\nIt's stored as a repo secret, I regenerated it yesterday."),
    Template("aws_deploy", "prompt",
             "Deploy the stack to us-east-1 with these credentials please:\n"
             "aws_access_key_id = «AWS_ID»\naws_secret_access_key = «AWS_SECRET»\n"
             "Bucket name should be «user»-artifacts."),
    Template("slack_bot", "prompt",
             "My slack bot doesn't answer mentions. Code:\n\n```python\nimport os\nfrom slack_bolt import App\n\n"
             "app = App(token=\"«SLACK»\", signing_secret=os.environ[\"SLACK_SIGNING_SECRET\"])\n\n"
             "@app.event(\"app_mention\")\ndef on_mention(event, say):\n    say(f\"hi <@{event['user']}>\")\n\n"
             "app.start(port=3000)\n```"),
    Template("maps_geocode", "prompt",
             "Why is this returning REQUEST_DENIED?\n\n```python\nimport requests\n\n"
             "params = {\"address\": \"«ADDRESS»\", \"key\": \"«GOOGLE»\"}\n"
             "r = requests.get(\"[[URL:https://maps.googleapis.com/maps/api/geocode/json]]\", params=params)\n"
             "print(r.json())\n```"),
    Template("ssh_key_paste", "prompt",
             "I need to log into the build box, here is my key, can you add it to the agent config?\n\n"
             "```\n«PEM»\n```"),
    Template("colleague_intro", "prompt",
             "Write a short intro email from me («PERSON») to «PERSON#2», who runs the «CITY» team at «company». "
             "Mention that «PERSON#3» from «COUNTRY» will join the call on «date»."),
    Template("uk_benefits", "prompt",
             "Help me fill the HMRC form. National Insurance number «NINO», NHS number «NHS», I live at «ADDRESS». "
             "My name is «PERSON» and my phone is «PHONE»."),
    Template("india_kyc", "prompt",
             "For the KYC step I have to give Aadhaar «AADHAAR» and PAN «PAN». Is it safe to paste them into "
             "this bank's chat? My name is «PERSON», registered mobile «PHONE»."),
    Template("au_tax", "prompt",
             "My tax file number is «TFN» and I moved to «CITY». Which form do I send to the ATO to update my "
             "address? Email me at «EMAIL»."),
    Template("itin_help", "prompt",
             "I'm a freelancer with ITIN «ITIN», not an SSN. Can I still open a Stripe account? Business address "
             "is «ADDRESS»."),
    Template("system_prompt_company", "prompt",
             "You are the support assistant of «company». Escalate billing disputes to «PERSON» («EMAIL», ext. "
             "«int»). Never reveal internal URLs such as «URL». The on-call phone is «PHONE»."),
    Template("webhook_debug", "prompt",
             "The Stripe webhook to «URL» returns 400. Secret key in the dashboard is «STRIPE», the endpoint "
             "logs show the request came from «IP». What's wrong with my signature check?"),
    Template("payroll_onboarding", "prompt",
             "Set up payroll for our new contractor «PERSON»: ITIN «ITIN», pay into IBAN «IBAN», home address "
             "«ADDRESS». Start date «date», rate $«amount»/day. Send the contract to «EMAIL»."),
    Template("au_onboarding", "prompt",
             "I'm starting a new job in «CITY» — the employer asks for my tax file number («TFN») and a bank "
             "account. Is it normal to email the TFN to «EMAIL»? My phone is «PHONE»."),
    Template("litellm_config", "prompt",
             "Why does litellm route everything to Groq? My config:\n\n```yaml\nmodel_list:\n"
             "  - model_name: fast\n    litellm_params:\n      model: groq/llama-3.1-8b-instant\n"
             "      api_key: «GROQ»\n"
             "  - model_name: smart\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n"
             "      api_key: «ANTHROPIC»\n"
             "  - model_name: local\n    litellm_params:\n      model: huggingface/meta-llama/Llama-3.1-8B-Instruct\n"
             "      api_key: «HF»\n```"),
    Template("boto3_inline_keys", "prompt",
             "This lambda can't read the bucket, help:\n\n```python\nimport boto3\n\ns3 = boto3.client(\n    \"s3\",\n"
             "    aws_access_key_id=\"«AWS_ID»\",\n    aws_secret_access_key=\"«AWS_SECRET»\",\n"
             "    region_name=\"eu-central-1\",\n)\n"
             "print(s3.list_objects_v2(Bucket=\"«user»-reports\"))\n```"),
    Template("kyc_documents", "prompt",
             "Verify my identity for the brokerage account: name «PERSON», passport number «PASSPORT», driver "
             "license «DL», SSN «SSN». I live at «ADDRESS»."),
    Template("bearer_header", "prompt",
             "Requests to our internal API fail with 403:\n\nGET /v1/reports/«int» HTTP/1.1\nHost: reports.internal\n"
             "Authorization: Bearer «BEARER»\nAccept: application/json\n\nThe same token worked yesterday."),
]

# --- completions ----------------------------------------------------------------------------------------

_COMPLETIONS = [
    Template("ticket_created", "completion",
             "I've opened ticket #«int» for «PERSON» («EMAIL»). A refund of $«amount» will go back to the card "
             "ending in «lastfour» within 5–7 business days, and a confirmation will be sent to «PHONE»."),
    Template("export_key_advice", "completion",
             "Set the key as an environment variable instead of hard-coding it:\n\n```bash\n"
             "export OPENAI_API_KEY=\"«OPENAI»\"\npython app.py\n```\n\nThen in code use `OpenAI()` with no "
             "arguments: the SDK reads `OPENAI_API_KEY` itself. Also rotate this key, since it was pasted in chat."),
    Template("booking_confirmed", "completion",
             "Your booking is confirmed:\n- Passenger: «PERSON»\n- Flight: «CITY» → «CITY#2», «date»\n"
             "- Confirmation sent to: «EMAIL»\n- Contact number on file: «PHONE»\nLet me know if you need a hotel "
             "in «CITY#2» too."),
    Template("customer_lookup", "completion",
             "I found two customers matching that name:\n\n1. «PERSON» — «EMAIL», «PHONE», «CITY»\n"
             "2. «PERSON#2» — «EMAIL#2», «PHONE#2», «CITY#2»\n\nWhich one should I update?"),
    Template("sqlalchemy_engine", "completion",
             "Here is the corrected engine setup:\n\n```python\nfrom sqlalchemy import create_engine\n\n"
             "engine = create_engine(\n    \"postgresql+psycopg2://«user»:«PASSWORD»@«dbhost»:5432/analytics\",\n"
             "    pool_pre_ping=True,\n)\n```\n\nThe original had the port after the database name."),
    Template("invoice_extract", "completion",
             "Extracted from the invoice:\n\n| field | value |\n|---|---|\n| beneficiary | «PERSON» |\n"
             "| IBAN | «IBAN» |\n| amount | €«amount» |\n| due | «date» |\n| reference | «order» |"),
    Template("tool_call_send_email", "completion",
             lambda r: _dumps({"type": "function", "name": "send_email", "arguments": _dumps({
                 "to": "«EMAIL»", "cc": ["«EMAIL#2»"], "subject": "Your order «order» has shipped",
                 "body": "Hi «FIRST», your order is on its way to «ADDRESS». Questions? Call «PHONE».",
             })})),
    Template("wallet_summary", "completion",
             "The wallet «BTC» received 3 incoming transactions this week totalling 0.31 BTC. The largest came "
             "from «BTC#2» on «date»."),
    Template("identity_verified", "completion",
             "Thanks, «FIRST». I've verified the SSN «SSN» against the record for «PERSON» at «ADDRESS»; "
             "the background check can proceed."),
    Template("discharge_summary", "completion",
             "Discharge summary for «PERSON» (NHS «NHS»): admitted «date» with community-acquired pneumonia, "
             "treated with amoxicillin. Follow-up with Dr «LAST#2» (DEA «DEA#2») at the «CITY» practice."),
    Template("curl_suggestion", "completion",
             "Try sending the token in the header rather than the query string:\n\n```bash\n"
             "curl -sS «URL» \\\n  -H \"Authorization: Bearer «BEARER»\"\n```"),
    Template("tool_call_crm", "completion",
             lambda r: _dumps({"tool_calls": [{
                 "id": "call_" + r.draw.chars("abcdefghijklmnopqrstuvwxyz0123456789", 24), "type": "function",
                 "function": {"name": "update_contact", "arguments": _dumps({
                     "contact_id": "«uuid»", "full_name": "«PERSON»", "phone": "«PHONE»", "email": "«EMAIL»",
                     "city": "«CITY»"})}}]})),
    Template("github_actions", "completion",
             "Add the token as a secret instead of inlining it. Your workflow currently has:\n\n```yaml\nenv:\n"
             "  GH_TOKEN: «GITHUB»\n  SLACK_WEBHOOK_TOKEN: «SLACK»\n```\n\nReplace both with `${{ secrets.GH_TOKEN }}` "
             "and `${{ secrets.SLACK_TOKEN }}`, then revoke the old values."),
    Template("jwt_explained", "completion",
             "The token `«JWT»` is a JWT signed with HMAC; its payload says it was issued for user «int» and "
             "expires one hour after issue. Don't paste live tokens in chat."),
    Template("meeting_notes", "completion",
             "Meeting notes («date»):\n- «PERSON» will send the revised contract to «PERSON#2» by Friday.\n"
             "- «PERSON#3» (based in «CITY») takes over the «COUNTRY» accounts.\n- Next sync: «date», "
             "dial-in «PHONE»."),
    Template("mongo_uri", "completion",
             "Your connection string should look like this:\n\n```\n"
             "mongodb+srv://«user»:«PASSWORD»@cluster0.«shortsha».mongodb.net/app?retryWrites=true&w=majority\n```\n"
             "Make sure the password is URL-encoded."),
    Template("google_key_restrict", "completion",
             "The key `«GOOGLE»` is unrestricted. In the Cloud console restrict it to the Geocoding API and to "
             "the referrer «URL», or anyone who finds it can bill your project."),
    Template("kyc_summary", "completion",
             "Identity check complete for «PERSON»:\n- US passport «PASSPORT» (valid)\n"
             "- Driver's license «DL» (issued in "
             "«PLACE»)\n- ITIN «ITIN» matches the W-7 on file\nNo further documents needed."),
    Template("slack_notify_snippet", "completion",
             "Post the alert with a plain HTTP call:\n\n```python\nimport httpx\n\nWEBHOOK = \"«SLACK_HOOK»\"\n"
             "httpx.post(WEBHOOK, json={\"text\": f\"Deploy finished by «FIRST»\"})\n```\n\n"
             "Keep the webhook URL in a secret: "
             "anyone who has it can post to the channel."),
    Template("india_kyc_reply", "completion",
             "I've recorded the KYC details for «PERSON»: Aadhaar «AADHAAR», PAN «PAN», registered mobile «PHONE». "
             "The account at the «CITY» branch will be activated within 24 hours."),
    Template("aws_profile", "completion",
             "Put this in `~/.aws/credentials` (and never commit it):\n\n```ini\n[deploy]\n"
             "aws_access_key_id = «AWS_ID»\naws_secret_access_key = «AWS_SECRET»\nregion = eu-west-1\n```"),
]


# --- tool outputs ---------------------------------------------------------------------------------------

def _env_dump(r) -> str:
    lines = ["SHELL=/bin/bash", "HOME=/home/«user»", "USER=«user»", "LANG=en_US.UTF-8",
             "PATH=/home/«user»/.local/bin:/usr/local/bin:/usr/bin:/bin", "TERM=xterm-256color",
             "HOSTNAME=ip-" + "-".join(str(r.rng.randint(1, 254)) for _ in range(4))]
    secrets = ["OPENAI_API_KEY=«OPENAI»", "ANTHROPIC_API_KEY=«ANTHROPIC»", "AWS_ACCESS_KEY_ID=«AWS_ID»",
               "AWS_SECRET_ACCESS_KEY=«AWS_SECRET»", "GITHUB_TOKEN=«GITHUB»", "SLACK_BOT_TOKEN=«SLACK»",
               "STRIPE_API_KEY=«STRIPE»", "GOOGLE_API_KEY=«GOOGLE»", "HF_TOKEN=«HF»", "GROQ_API_KEY=«GROQ»",
               "DATABASE_URL=postgresql://«user»:«PASSWORD»@«dbhost»:«port»/app", "PGPASSWORD=«PASSWORD#2»"]
    chosen = r.rng.sample(secrets, r.rng.randint(2, 5))
    other = ["PYTHONUNBUFFERED=1", "LOG_LEVEL=info", "OTEL_SERVICE_NAME=agent", "AWS_REGION=us-east-1",
             "NODE_OPTIONS=--max-old-space-size=4096", "VIRTUAL_ENV=/home/«user»/.venv", "PWD=/srv/app"]
    body = lines + chosen + r.rng.sample(other, 3)
    r.rng.shuffle(body)
    return "$ env\n" + "\n".join(body)


def _dotenv(r) -> str:
    lines = ["# generated by setup.sh", "APP_ENV=staging", "APP_URL=«URL»", "DB_HOST=«dbhost»", "DB_PORT=«port»",
             "DB_USER=«user»", "DB_PASSWORD=«PASSWORD»", "REDIS_URL=redis://:«PASSWORD#2»@«dbhost»:6379/0",
             r.pick(("OPENAI_API_KEY=«OPENAI»", "ANTHROPIC_API_KEY=«ANTHROPIC»", "GEMINI_API_KEY=«GOOGLE»",
                     "GROQ_API_KEY=«GROQ»")),
             "SLACK_WEBHOOK=«SLACK_HOOK»",
             r.pick(("STRIPE_SECRET=«STRIPE»", "RELEASE_SHA=«sha»")),
             "SUPPORT_EMAIL=«EMAIL»", "ADMIN_PHONE=«PHONE»"]
    return "$ cat .env\n" + "\n".join(lines)


def _git_log(r) -> str:
    subjects = ("fix: retry on 429 from provider", "feat: stream tool results", "chore: bump openai to 1.57",
                "docs: explain the redaction config", "refactor: split the HTTP/2 parser", "test: cover SSE resume")
    out = ["$ git log -n 3"]
    for n in range(3):
        idx = ("", "#2", "#3")[n] if r.rng.random() < 0.7 else ""
        out.append(f"commit «sha*»\nAuthor: «PERSON{idx}» <«EMAIL{idx}»>\nDate:   Tue Mar {n + 3} «time» 2025 +0100\n\n"
                   f"    {r.pick(subjects)}\n")
    return "\n".join(out)


def _nginx_log(r) -> str:
    uas = ('"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 '
           'Safari/537.36"',
           '"python-httpx/0.27.0"', '"curl/8.5.0"', '"OpenAI/Python 1.57.0"')
    lines = ["$ tail -n 5 /var/log/nginx/access.log"]
    for _ in range(5):
        path = r.pick(("/api/orders/«int*»", "/login", "/api/users?email=«EMAIL*»", "/healthz", "/v1/chat/completions",
                       "/reset-password?phone=«PHONE*»"))
        status = r.pick((200, 200, 401, 404, 500))
        lines.append(f"«IP*» - - [12/Mar/2025:«time*» +0000] \"GET {path} HTTP/1.1\" {status} "
                     f"{r.rng.randint(50, 9000)} \"-\" {r.pick(uas)}")
    return "\n".join(lines)


def _sql_rows(r) -> str:
    rows = []
    for n in range(r.rng.randint(2, 4)):
        i = f"#{n + 1}" if n else ""
        rows.append(f" {r.rng.randint(1000, 9999)} | «PERSON{i}» | «EMAIL{i}» | «PHONE*» | «SSN*» | «date*»")
    return ("$ psql -c \"select id, name, email, phone, ssn, created from customers where flagged\"\n"
            "  id  |        name        |          email           |      phone       |     ssn     |  created\n"
            "------+--------------------+--------------------------+------------------+-------------+------------\n"
            + "\n".join(rows) + f"\n({len(rows)} rows)")


def _crm_json(r) -> str:
    return _dumps({"results": [
        {"id": "«uuid»", "name": "«PERSON»", "email": "«EMAIL»", "phone": "«PHONE»",
         "address": {"street": "«ADDRESS»", "city": "«CITY»", "country": "«COUNTRY»"},
         "card_last4": "«lastfour»", "created_at": "«date»T«time»Z"},
        {"id": "«uuid#2»", "name": "«PERSON#2»", "email": "«EMAIL#2»", "phone": "«PHONE#2»",
         "address": {"street": "«ADDRESS#2»", "city": "«CITY#2»", "country": "«COUNTRY#2»"},
         "card_last4": "«lastfour#2»", "created_at": "«date#2»T«time#2»Z"}], "total": 2}, indent=r.pick((None, 2)))


def _ip_addr(r) -> str:
    mac = ":".join(r.draw.hexstr(2) for _ in range(6))
    return ("$ ip addr show eth0\n2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc mq state UP group default "
            "qlen 1000\n"
            f"    link/ether {mac} brd ff:ff:ff:ff:ff:ff\n"
            "    inet «IPV4»/20 brd [[IP_ADDRESS:172.31.15.255]] scope global dynamic eth0\n"
            "       valid_lft 3419sec preferred_lft 3419sec\n    inet6 «IPV6»/64 scope link\n"
            "       valid_lft forever preferred_lft forever")


def _history(r) -> str:
    return ("$ history | tail -n 6\n  501  cd ~/src/billing\n  502  export GITHUB_TOKEN=«GITHUB»\n"
            "  503  mysql -h «dbhost» -u root -p«PASSWORD» billing < migrate.sql\n"
            "  504  curl -u «user»:«PASSWORD#2» [[URL:https://ci.internal.acme-corp.io/job/billing/build]]\n"
            "  505  ssh «user»@«IP»\n  506  history | tail -n 6")


def _docker_inspect(r) -> str:
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "POSTGRES_PASSWORD=«PASSWORD»",
           r.pick(("STRIPE_API_KEY=«STRIPE»", "OPENAI_API_KEY=«OPENAI»", "SLACK_TOKEN=«SLACK»")),
           "ADMIN_EMAIL=«EMAIL»", "TZ=Europe/Berlin"]
    return "$ docker inspect --format '{{json .Config.Env}}' billing-api\n" + _dumps(env)


def _ecs_task(r) -> str:
    # Secrets whose name and value sit in sibling JSON fields: nothing in the value's own string says
    # what it is except its shape.
    env = [{"name": "AWS_ACCESS_KEY_ID", "value": "«AWS_ID»"},
           {"name": "AWS_SECRET_ACCESS_KEY", "value": "«AWS_SECRET»"},
           {"name": "ANTHROPIC_API_KEY", "value": "«ANTHROPIC»"}, {"name": "DB_PASSWORD", "value": "«PASSWORD»"},
           {"name": "LOG_LEVEL", "value": "debug"}]
    container = {"name": "worker", "image": "«int».dkr.ecr.us-east-1.amazonaws.com/agent-worker@«digest»",
                 "environment": env}
    return _dumps({"taskDefinition": {"family": "agent-worker", "revision": r.rng.randint(3, 90),
                                      "containerDefinitions": [container]}})


def _sts(r) -> str:
    role_id = "AROA" + r.draw.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 17) + ":«user»"
    return _dumps({"Credentials": {"AccessKeyId": "«AWS_ID»", "SecretAccessKey": "«AWS_SECRET»",
                                   "Expiration": "«date»T«time»+00:00"},
                   "AssumedRoleUser": {"AssumedRoleId": role_id,
                                       "Arn": "arn:aws:sts::«int»:assumed-role/deploy/«user»"}}, indent=4)


def _service_account(r) -> str:
    # The PEM key is inside a JSON string: its newlines are the two characters \n.
    return ("$ cat credentials.json\n{\n  \"type\": \"service_account\",\n  \"project_id\": \"agent-prod-«int»\",\n"
            "  \"private_key_id\": \"«sha»\",\n  \"private_key\": \"«PEM|json»\\n\",\n"
            "  \"client_email\": \"[[EMAIL_ADDRESS:agent-runner@agent-prod.iam.gserviceaccount.com]]\",\n"
            "  \"client_id\": \"«clientid»\",\n  \"token_uri\": \"[[URL:https://oauth2.googleapis.com/token]]\"\n}")


def _http_dump(r) -> str:
    return ("$ http -v POST «URL» amount=«amount»\nPOST /charges HTTP/1.1\nAccept: application/json, */*;q=0.5\n"
            "Authorization: Bearer «BEARER»\nContent-Type: application/json\nUser-Agent: HTTPie/3.2.2\n\n"
            "{\"amount\": \"«amount»\"}\n\nHTTP/1.1 402 Payment Required\nContent-Type: application/json\n"
            "X-Request-Id: «uuid»\n\n{\"error\": {\"code\": \"card_declined\", \"message\": \"Your card was "
            "declined.\"}}")


_TOOL_OUTPUTS = [
    Template("env_dump", "tool_output", _env_dump),
    Template("dotenv_cat", "tool_output", _dotenv),
    Template("git_log", "tool_output", _git_log),
    Template("nginx_log", "tool_output", _nginx_log),
    Template("psql_rows", "tool_output", _sql_rows),
    Template("crm_search_json", "tool_output", _crm_json),
    Template("ip_addr", "tool_output", _ip_addr),
    Template("shell_history", "tool_output", _history),
    Template("docker_env", "tool_output", _docker_inspect),
    Template("ecs_task_definition", "tool_output", _ecs_task),
    Template("sts_assume_role", "tool_output", _sts),
    Template("service_account_json", "tool_output", _service_account),
    Template("httpie_dump", "tool_output", _http_dump),
    Template("psycopg_traceback", "tool_output",
             "Traceback (most recent call last):\n  File \"/srv/app/jobs/sync.py\", line 41, in run\n"
             "    conn = psycopg2.connect(dsn)\n  File \"/usr/lib/python3/dist-packages/psycopg2/__init__.py\", line "
             "122, in connect\n"
             "    conn = _connect(dsn, connection_factory=connection_factory, **kwasync)\n"
             "psycopg2.OperationalError: connection to server at \"«IP»\", port 5432 failed: FATAL:  password "
             "authentication failed for user \"«user»\"\n\n"
             "locals: dsn='postgresql://«user»:«PASSWORD»@«IP»:5432/warehouse'"),
    Template("openai_error_log", "tool_output",
             "{\"level\":\"error\",\"ts\":\"«date»T«time»Z\",\"msg\":\"provider call failed\",\"status\":401,"
             "\"request_id\":\"req_«hex»\",\"client_ip\":\"«IP»\",\"user_email\":\"«EMAIL»\","
             "\"error\":\"Incorrect API key provided: «OPENAI». You can find your API key at "
             "[[URL:https://platform.openai.com/account/api-keys]].\"}"),
    Template("web_search_results", "tool_output",
             lambda r: _dumps([{"title": "«company» – Contact", "url": "«URL»",
                                "snippet": "Reach our office in «CITY» at «PHONE» or «EMAIL»."},
                               {"title": "«PERSON» | LinkedIn", "url": "«URL#2»",
                                "snippet": "«PERSON» – Head of Finance at «company». Location: «PLACE»."}],
                              indent=2)),
    Template("imap_message", "tool_output",
             "Return-Path: <«EMAIL»>\nReceived: from mail.«shortsha».net ([«IP»])\nFrom: «PERSON» <«EMAIL»>\n"
             "To: «EMAIL#2»\nSubject: Re: contract\n\n"
             "Hi «FIRST#2»,\n\nattached is the signed contract. My new number is «PHONE», and please use my home "
             "address for the courier: «ADDRESS».\n\nCheers,\n«FIRST»"),
    Template("payment_db_row", "tool_output",
             "$ sqlite3 legacy.db 'select * from payments where id=«int»'\n«int»|«PERSON»|«CARD»|«date»|«amount»|USD|"
             "«EMAIL»|«IP»"),
    Template("kubectl_describe", "tool_output",
             "$ kubectl describe pod agent-«shortsha»-«shortsha#2»\nName:         agent-«shortsha»-«shortsha#2»\n"
             "Namespace:    prod\nNode:         ip-10-0-3-17.ec2.internal/«IP»\nStatus:       Running\n"
             "IP:           «IP#2»\n"
             "Containers:\n  agent:\n    Image:      ghcr.io/acme/agent@«digest»\n    Environment:\n"
             "      OPENAI_API_KEY:     «OPENAI»\n      AUTH_TOKEN:         «JWT»\n      OWNER_EMAIL:        «EMAIL»"),
    Template("alertmanager_config", "tool_output",
             "$ cat alertmanager.yml\nroute:\n  receiver: oncall\nreceivers:\n- name: oncall\n  email_configs:\n"
             "  - to: «EMAIL»\n    smarthost: smtp.internal:587\n    auth_username: «user»\n"
             "    auth_password: «PASSWORD»\n"
             "  slack_configs:\n  - api_url: «SLACK_HOOK»\n    channel: '#oncall'"),
    Template("hf_download_error", "tool_output",
             "huggingface_hub.errors.GatedRepoError: 403 Client Error. Cannot access gated repo for url "
             "[[URL:https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/config.json]].\n"
             "Access to model meta-llama/Llama-3.1-8B is restricted. Token used: «HF» (user «user»)."),
    Template("hr_record_json", "tool_output",
             lambda r: _dumps({"employee": {"id": "E«int»", "name": "«PERSON»", "ssn": "«SSN»", "itin": None,
                                                "passport_number": "«PASSPORT»", "drivers_license": "«DL»",
                                                "bank": {"iban": "«IBAN»", "bic": "DEUTDEFF"},
                                                "home": "«ADDRESS»", "work_email": "«EMAIL»"}}, indent=2)),
    Template("aadhaar_api_json", "tool_output",
             lambda r: _dumps({"status": "VERIFIED", "aadhaar_number": "«AADHAAR»", "pan": "«PAN»",
                                   "name_on_card": "«PERSON»", "mobile": "«PHONE»", "state": "«PLACE»"})),
    Template("patients_csv", "tool_output",
             "$ head -4 exports/patients.csv\nname,nhs_number,ni_number,gp,phone\n"
             "«PERSON»,«NHS»,«NINO»,Dr «LAST#4»,«PHONE»\n"
             "«PERSON#2»,«NHS#2»,«NINO#2»,Dr «LAST#4»,«PHONE#2»\n«PERSON#3»,«NHS#3»,«NINO#3»,Dr «LAST#5»,«PHONE#3»"),
    Template("dea_registry_lookup", "tool_output",
             lambda r: _dumps({"query": "«LAST»", "matches": [
                 {"name": "«PERSON»", "dea_number": "«DEA»", "schedule": "2,2N,3,3N,4,5", "city": "«CITY»"},
                 {"name": "«PERSON#2»", "dea_number": "«DEA#2»", "schedule": "2,3,4,5", "city": "«CITY#2»"}]})),
    Template("aws_credentials_file", "tool_output",
             "$ cat ~/.aws/credentials\n[default]\naws_access_key_id = «AWS_ID»\n"
             "aws_secret_access_key = «AWS_SECRET»\n\n"
             "[ci]\naws_access_key_id = «AWS_ID#2»\naws_secret_access_key = «AWS_SECRET#2»"),
    Template("hf_token_cat", "tool_output",
             "$ cat ~/.cache/huggingface/token\n«HF»\n$ cat ~/.config/groq/credentials\nGROQ_API_KEY=«GROQ»"),
    Template("id_rsa_cat", "tool_output", "$ cat ~/.ssh/id_ed25519\n«PEM»\n$ ls -l ~/.ssh\n"
                                          "-rw------- 1 «user» «user» 411 Mar  3 10:12 id_ed25519"),
    Template("booking_api_json", "tool_output",
             lambda r: _dumps({"booking": {
                 "ref": "«order»",
                 "guest": {"name": "«PERSON»", "passport": "«PASSPORT»", "driver_license": "«DL»", "phone": "«PHONE»"},
                 "payment": {"card_number": "«CARD»", "holder": "«PERSON»"},
                 "pickup": "«PLACE»"}})),
    Template("crypto_exchange_api", "tool_output",
             lambda r: _dumps({"withdrawals": [
                 {"id": "«uuid»", "address": "«BTC»", "amount": "0.0«int»", "status": "sent", "txid": "«hex»«hex#2»"},
                 {"id": "«uuid#2»", "address": "«BTC#2»", "amount": "0.1«int#2»", "status": "pending"}],
                 "account_email": "«EMAIL»"})),
    Template("pharmacy_lookup", "tool_output",
             lambda r: _dumps({"prescriber": {"name": "Dr. «PERSON»", "dea": "«DEA»", "phone": "«PHONE»"},
                                   "patient": {"name": "«PERSON#2»", "nhs_number": "«NHS#2»", "city": "«CITY#2»"}})),
]

TEMPLATES = _PROMPTS + _COMPLETIONS + _TOOL_OUTPUTS
