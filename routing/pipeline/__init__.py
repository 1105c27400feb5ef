"""One request's stages, whichever door it came through: plan → reserve → call → price and record → render.

- `types`: the canonical request (CompletionInput) and result (Completion) doors parse into and render from
- `plan`: which models to try, in order, and the prompt estimate each is judged on
- `reserve`: the budget hold for an attempt's worst case
- `call`: retries, fallbacks and cooldowns around the vendor adapters
- `record`: pricing, the log row with its attempts and the budget settlement, metrics
- `caching`: the response cache lookup, hit and store
- `stream`: the relay of a vendor stream through a door's renderer
- `complete`: the two entry points, `completion_create` and `completion_stream_open`
"""
