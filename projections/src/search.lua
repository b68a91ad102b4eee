-- Product search in one round trip. Every key shares the `{catalogue}` hash tag of ARGV[1].
-- ARGV: prefix, n, token_1..token_n, last_prefix, category, brand, min_price, max_price,
--       in_stock ('1'/'0'), sort ('relevance'|'price_asc'|'price_desc'), offset, limit
-- Returns: { total, sku_1, fields_1, sku_2, fields_2, ... }
local p = ARGV[1]
local n = tonumber(ARGV[2])
local i = 3 + n
local prefix, category, brand = ARGV[i], ARGV[i + 1], ARGV[i + 2]
local min_price, max_price, in_stock, sort = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
local offset, limit = tonumber(ARGV[i + 7]), tonumber(ARGV[i + 8])
local tmp = p .. ':tmp'

-- Term indexes only hold listed products, so `listed` is needed only without any words.
-- When sorting by price, relevance does not matter: text keys get weight 0, price weight 1.
local by_price = sort ~= 'relevance'
local text_weight = by_price and 0 or 1
local keys, weights = {}, {}
local function add(key, weight)
  keys[#keys + 1] = key
  weights[#weights + 1] = weight
end
if n == 0 and prefix == '' then add(p .. ':listed', 0) end
for t = 1, n do add(p .. ':term:' .. ARGV[2 + t], text_weight) end
if prefix ~= '' then
  -- Type-ahead: the last word matches every indexed term it is a prefix of.
  local terms = redis.call('ZRANGEBYLEX', p .. ':terms', '[' .. prefix, '[' .. prefix .. '\255', 'LIMIT', 0, 64)
  if #terms == 0 then return { 0 } end
  if #terms == 1 then
    add(p .. ':term:' .. terms[1], text_weight)
  else
    local term_keys = {}
    for _, term in ipairs(terms) do term_keys[#term_keys + 1] = p .. ':term:' .. term end
    redis.call('ZUNIONSTORE', tmp .. ':prefix', #term_keys, unpack(term_keys))
    add(tmp .. ':prefix', text_weight)
  end
end
if category ~= '' then add(p .. ':category:' .. category, 0) end
if brand ~= '' then add(p .. ':brand:' .. brand, 0) end
if in_stock == '1' then add(p .. ':instock', 0) end
if by_price then add(p .. ':price', 1) end

local args = { 'ZINTERSTORE', tmp, #keys }
for _, k in ipairs(keys) do args[#args + 1] = k end
args[#args + 1] = 'WEIGHTS'
for _, w in ipairs(weights) do args[#args + 1] = w end
redis.call(unpack(args))

local result = tmp
if by_price then
  -- Scores already are prices: filter the range in place.
  if min_price ~= '-inf' then redis.call('ZREMRANGEBYSCORE', tmp, '-inf', '(' .. min_price) end
  if max_price ~= '+inf' then redis.call('ZREMRANGEBYSCORE', tmp, '(' .. max_price, '+inf') end
elseif min_price ~= '-inf' or max_price ~= '+inf' then
  -- Relevance order within a price range: keep relevance scores, drop out-of-range members.
  redis.call('ZINTERSTORE', tmp .. ':price', 2, tmp, p .. ':price', 'WEIGHTS', 0, 1)
  if min_price ~= '-inf' then redis.call('ZREMRANGEBYSCORE', tmp .. ':price', '-inf', '(' .. min_price) end
  if max_price ~= '+inf' then redis.call('ZREMRANGEBYSCORE', tmp .. ':price', '(' .. max_price, '+inf') end
  redis.call('ZINTERSTORE', tmp, 2, tmp, tmp .. ':price', 'WEIGHTS', 1, 0)
end

local total = redis.call('ZCARD', result)
local page
if sort == 'price_asc' then
  page = redis.call('ZRANGE', result, offset, offset + limit - 1)
else
  page = redis.call('ZREVRANGE', result, offset, offset + limit - 1)
end
local out = { total }
for _, sku in ipairs(page) do
  out[#out + 1] = sku
  out[#out + 1] = redis.call('HGETALL', p .. ':product:' .. sku)
end
redis.call('DEL', tmp, tmp .. ':price', tmp .. ':prefix')
return out
