# What vulture (`make lint`) cannot see used, kept short: each line is read by name from
# somewhere no import shows. Add a name here only with the reader beside it.
_ = object()
_.last_delivery, _.browser_flow, _.token_where, _.revokes, _.state_label  # connections.html
_.per_key, _.per_token, _.per_ip  # sandbox rate-limit configs, read by field
_.chosen_by_user  # the Last.fm fake's record of a scrobble, shown by its admin API
_.last_sync_at, _.last_sync_status, _.last_http_status  # rows as the API shows them
_.env_settings, _.dotenv_settings, _.file_secret_settings  # pydantic-settings' signature
