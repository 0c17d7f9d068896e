"""Who is calling and how much they may do: API keys and JWTs, the verified-key cache, rate limits and job caps."""
