-- tests/lua/optim_spec.lua: optimizers and schedulers against PyTorch 1.13 (numbers generated
-- by the script at the end of this file and pasted here), state_dict round trips, errors, and
-- nn.utils.clip_grad_norm_.
local tide = require "tide"
local optim = require "tide.optim"
local utils = require "tide.nn_utils"

local REF = {
  sgd = {
    {0.6, -1.2, 1.4, 2.9, 0.9, -1.7, 0.275},
    {0.6799999999999999, -0.96, 0.9199999999999999, 2.82, 0.81, -1.43, 0.29750000000000004},
    {0.744, -0.768, 0.5359999999999999, 2.756, 0.7290000000000001, -1.187, 0.31775000000000003},
    {0.7952, -0.6144000000000001, 0.2287999999999999, 2.7047999999999996, 0.6561000000000001,
     -0.9683, 0.335975},
    {0.83616, -0.49152, -0.0169600000000001, 2.6638399999999995, 0.5904900000000001, -0.77147,
     0.3523775},
  },
  sgd_momentum = {
    {0.5995, -1.1985, 1.398, 2.897, 0.899, -1.698, 0.27475},
    {0.76060045, -0.7103413499999999, 0.42330179999999995, 2.7302326999999997, 0.7263809,
     -1.1818517999999998, 0.317050225},
    {0.947998233595, -0.14249781478499982, -0.71050187562, 2.53624303457, 0.50499568619,
     -0.5198880913799997, 0.3713005620475},
    {1.1251633583731646, 0.39433922160310664, -1.782395394378342, 2.352845970729287,
     0.259844885886329, 0.21313707388444234, 0.4313746443001323},
    {1.2610699191438073, 0.8061565891644005, -2.6046642344178075, 2.2121587771677174,
     0.015589265485957779, 0.9434855626063444, 0.49122936316061927},
  },
  sgd_nesterov = {
    {0.68905, -0.9271499999999999, 0.8562000000000001, 2.8043, 0.8081, -1.4262, 0.297025},
    {0.886496805, -0.32885641499999985, -0.33840277999999996, 2.59990783, 0.57121561,
     -0.7178922199999999, 0.35507340249999997},
    {1.0502949446705, 0.16747664138850019, -1.329422680318, 2.430347946723, 0.32185967344099997,
     0.02770671901800028, 0.41617795131025},
    {1.156972903028786, 0.490726937318382, -1.974851131892756, 2.3199174973671863,
     0.08759795815357203, 0.7281724419566461, 0.473583668670288},
    {1.2011334693754436, 0.6245401107205653, -2.242033653909719, 2.2742035442646165,
     -0.11079058945899668, 1.321373841748683, 0.5221986840505957},
  },
  sgd_groups = {
    {0.6, -1.2, 1.4, 2.9, 0.95, -1.85, 0.2625},
    {0.73, -0.8099999999999999, 0.6199999999999999, 2.77, 0.8574999999999999, -1.5725, 0.285625},
    {0.849, -0.45299999999999996, -0.09400000000000013, 2.651, 0.7313749999999999,
     -1.1941249999999999, 0.31715625000000003},
    {0.9387, -0.18389999999999995, -0.6322000000000001, 2.5612999999999997, 0.5812937499999999,
     -0.7438812499999998, 0.3546765625},
    {0.99581, -0.012569999999999961, -0.9748600000000001, 2.50419, 0.41715593749999996,
     -0.25146781249999983, 0.395711015625},
  },
  adam = {
    {0.599999999, -1.4000000003333333, 1.9000000001666666, 2.900000001, 0.900000001,
     -1.9000000003333333, 0.3499999960000002},
    {0.6988125783408332, -1.3002390622922801, 1.8001027074147888, 2.801187421659167,
     0.8004122297123382, -1.8001027077505518, 0.4457490093135461},
    {0.7951287474397004, -1.2009028705180997, 1.7003815234507471, 2.7048712525602996,
     0.701586274504415, -1.7003815239578244, 0.5302083192663305},
    {0.8870846018099783, -1.1021989364677947, 1.6009135310557854, 2.6129153981900215,
     0.603939062682108, -1.6009135317361514, 0.5931381184032783},
    {0.9721855486293904, -1.0043581694516794, 1.501779456227287, 2.5278144513706096,
     0.507963661927221, -1.50177945708264, 0.6276039284021468},
  },
  adam_amsgrad = {
    {0.5999999989473684, -1.4000000003174604, 1.9000000001612904, 2.900000000769231,
     0.9000000009090909, -1.9000000003125, 0.3499999955555557},
    {0.6985938182267247, -1.3002390622600846, 1.8001046314745233, 2.8008401563457777,
     0.8004122295267844, -1.8001064435523881, 0.4435380413099199},
    {0.7941484916460491, -1.2009028704691824, 1.7003887666198767, 2.703359564377815,
     0.7015862742210722, -1.7003955906286825, 0.5188204915807214},
    {0.8842707018889633, -1.1021989364018254, 1.6009311084175832, 2.608681154404488,
     0.6039390622987693, -1.6009476757132877, 0.5625429325074044},
    {0.9657465042376978, -1.004358169368419, 1.5018141572745367, 2.5182621571640866,
     0.5079636614430609, -1.5018468790115307, 0.573692318112539},
  },
  adam_groups = {
    {0.6998001998001998, -1.3000666444518494, 1.8000333277787035, 2.8001998001998003,
     0.99000999000999, -1.9900033322225925, 0.2599601593625498},
    {0.8910835025415202, -1.1013879595584313, 1.600545722608099, 2.60891649745848,
     0.9800243453084908, -1.9800080753122404, 0.2699004143964214},
    {1.0598333541433358, -0.9051229584464272, 1.4019084474934367, 2.4401666458566647,
     0.9700450868076002, -1.9700148690695727, 0.27981056004730237},
    {1.1856752669866732, -0.7127449365667036, 1.204536380513544, 2.314324733013327,
     0.9600732420049838, -1.960024019356678, 0.2896839494739146},
    {1.254771818250139, -0.5260945147547842, 1.0088911499161555, 2.245228181749861,
     0.950108916202926, -1.9500355276496284, 0.2995174953766596},
  },
  adam_maximize = {
    {0.4500000005, -1.5499999998333334, 2.0499999999166665, 3.0499999995000002, 1.0499999995,
     -2.049999999833333, 0.2000000019999999},
    {0.3999326126088401, -1.600036007017363, 2.100019833449065, 3.10006738739116,
     1.1000486890248793, -2.1000198332830275, 0.14996934807655515},
    {0.34975497383910825, -1.650130666233852, 2.1500722799371474, 3.150245026160892,
     1.1501761965514503, -2.150072279688987, 0.09985261905705892},
    {0.29942673474972553, -1.700305597814573, 2.200169764636634, 3.200573265250275,
     1.2004109155319913, -2.2001697643068856, 0.04959069404288766},
    {0.2489104033716199, -1.7505813981936649, 2.250324342853913, 3.2510895966283804,
     1.2507795301012237, -2.25032434244307, -0.0008727938009470415},
  },
  adamw = {
    {0.594999999, -1.3850000003333331, 1.8800000001666666, 2.8700000009999997, 0.890000001,
     -1.8800000003333333, 0.34749999600000014},
    {0.6879592202507538, -1.271436997395958, 1.7613271883119548, 2.7431686819677377,
     0.781571856954161, -1.7613271886465631, 0.4399860829773303},
    {0.7777561630547124, -1.1595201600808838, 1.6440586051965227, 2.6218197231265132,
     0.6751012231892006, -1.6440586057000908, 0.5210873053381744},
    {0.8628592956588617, -1.0494831665363598, 1.5282745400697766, 2.5094816653436296,
     0.5710475992066121, -1.5282745407430296, 0.5816449258014733},
    {0.9412889904868531, -0.9415856399836011, 1.4140583581685016, 2.4108399780423215,
     0.4699526596188067, -1.414058359011834, 0.6150926273012902},
  },
  adamw_amsgrad = {
    {0.5994999000001, -1.3985000333333222, 1.898000016666664, 2.8970000999998997,
     0.8990000999998999, -1.8980000333333222, 0.3497496000016},
    {0.6976440469111358, -1.2973679173992814, 1.7962181816165597, 2.7954332309236127,
     0.798554201534521, -1.7962182151928432, 0.4449317272479292},
    {0.7930230990815561, -1.1968085556394332, 1.694735905408657, 2.696822217559296,
     0.6990459739916761, -1.6947359561247597, 0.5250529530523074},
    {0.8834372697408278, -1.097049136773498, 1.5936366815397631, 2.603932958058827,
     0.6009361202322029, -1.5936367496110944, 0.5789355464738332},
    {0.9630736092375147, -0.9983408930371125, 1.4930053190849393, 2.522663078267579,
     0.504778267145015, -1.4930054047101093, 0.6031414357528978},
  },
  rmsprop = {
    {0.5999999900000009, -1.4000000033333333, 1.9000000016666667, 2.900000009999999,
     0.9000000099999991, -1.9000000033333333, 0.34999996000001593},
    {0.6626608220425075, -1.331585116078795, 1.8303174494400767, 2.8373391779574924,
     0.8329179752650593, -1.8303174519233238, 0.4016397302701146},
    {0.7095667736789566, -1.2768514992249174, 1.773888569391669, 2.7904332263210434,
     0.7799822819823541, -1.7738885724144244, 0.43385765948642835},
    {0.7471744707489462, -1.2301960696859, 1.7253063134148545, 2.7528255292510537,
     0.7353890542033931, -1.725306316840031, 0.45513323369039527},
    {0.7784289999479106, -1.1890254159886953, 1.6820538418746585, 2.7215710000520894,
     0.696465799281033, -1.682053845620525, 0.4694877251459738},
  },
  rmsprop_center = {
    {0.6005037708932801, -1.3994962216807487, 1.899496220103274, 2.899496226244086,
     0.8994962276568145, -1.8994962216306444, 0.350503736632563},
    {0.7531585276249493, -1.2399509477090112, 1.7386831603005914, 2.74399447850403,
     0.7413059906502579, -1.7387021729838206, 0.4868901795343054},
    {0.9240779572414629, -1.0435555238400245, 1.5379965554150714, 2.56216693753573,
     0.5496501810751404, -1.5380788547555058, 0.595458483018105},
    {1.082690687534186, -0.8257223610470681, 1.3108363299994705, 2.3778907370727924,
     0.34247419314023536, -1.311053697516511, 0.6406310956130553},
    {1.2038981169476057, -0.5984266584942827, 1.0669601987230513, 2.212392396342987,
     0.13470194393157414, -1.067413206182782, 0.6241222779227462},
  },
  rmsprop_alpha = {
    {0.6581138780084191, -1.3418861186582476, 1.8418861178249144, 2.841886121991581,
     0.8418861219915809, -1.8418861186582476, 0.40811386300842156},
    {0.8296216289455909, -1.1543534509945896, 1.6511076523961756, 2.6703783710544093,
     0.6578807250129403, -1.6511076540689762, 0.5442911747450128},
    {0.9617998656190908, -0.9770664941684966, 1.465498871291551, 2.5382001343809093,
     0.49002775220206024, -1.465498873661626, 0.5838340883194257},
    {1.038834393645562, -0.8210164875728823, 1.2955073646312376, 2.461165606354438,
     0.3503696271755337, -1.2955073675529645, 0.5500218857428466},
    {1.0656547581357738, -0.6871362328564921, 1.1421949807672205, 2.434345241864226,
     0.23994501898839699, -1.142194984122972, 0.5001546123115823},
  },
  adagrad = {
    {0.59999999999, -1.4000000000033332, 1.9000000000016666, 2.90000000001, 0.90000000001,
     -1.9000000000033332, 0.34999999996},
    {0.6624695047415167, -1.331768174968908, 1.8304977903177313, 2.837530495258483,
     0.8331035268523168, -1.8304977903202102, 0.4014495754951937},
    {0.70910082320375, -1.2773245390840855, 1.7743593459391784, 2.7908991767962497,
     0.7804561813655163, -1.7743593459421911, 0.43347210013991877},
    {0.7463910183696282, -1.2310372642504326, 1.7261506373867164, 2.7536089816303715,
     0.7362231326707235, -1.726150637390125, 0.4546013176454344},
    {0.7773082157166666, -1.1902972541939227, 1.683340092723372, 2.722691784283333,
     0.6977148620648239, -1.6833400927270943, 0.46887232842152127},
  },
  adagrad_decay = {
    {0.5802180628681687, -1.4024281359767763, 1.9006440875996398, 2.912154140814003,
     0.9158808975872268, -1.902355488371403, 0.28032177041972817},
    {0.6302911727012923, -1.3411599830770196, 1.83768244895862, 2.8574322478519156,
     0.8603983690805621, -1.8399622209805857, 0.3030548106194637},
    {0.6661499407881735, -1.2960151236996456, 1.7909510345867536, 2.8178403811114348,
     0.8189495267365597, -1.7935253020936315, 0.3207606540710292},
    {0.6936249189335798, -1.2603386799899277, 1.753808785512809, 2.787119187485677,
     0.7860345263952505, -1.7565670707302576, 0.33494671205119597},
    {0.7155727299719378, -1.2309713431945186, 1.7230928616680992, 2.7622567497035213,
     0.7588984334631891, -1.7259787966084843, 0.34656584183401973},
  },
}
local LRS = {
  step = {
    {0.1, 0.02},
    {0.1, 0.02},
    {0.05, 0.01},
    {0.05, 0.01},
    {0.05, 0.01},
    {0.025, 0.005},
    {0.025, 0.005},
    {0.025, 0.005},
    {0.0125, 0.0025},
    {0.0125, 0.0025},
    {0.0125, 0.0025},
    {0.00625, 0.00125},
  },
  exponential = {
    {0.09000000000000001, 0.018000000000000002},
    {0.08100000000000002, 0.016200000000000003},
    {0.07290000000000002, 0.014580000000000003},
    {0.06561000000000002, 0.013122000000000003},
    {0.05904900000000002, 0.011809800000000004},
    {0.05314410000000002, 0.010628820000000004},
    {0.04782969000000002, 0.009565938000000005},
    {0.043046721000000024, 0.008609344200000004},
    {0.03874204890000002, 0.007748409780000004},
    {0.03486784401000002, 0.006973568802000004},
    {0.03138105960900001, 0.006276211921800004},
    {0.028242953648100012, 0.0056485907296200035},
  },
  cosine = {
    {0.0905463412215599, 0.018185661446562},
    {0.06579634122155989, 0.013435661446562},
    {0.035203658778440096, 0.007564338553437999},
    {0.010453658778440105, 0.002814338553438},
    {0.001, 0.001},
    {0.010453658778440102, 0.002814338553437999},
    {0.03520365877844012, 0.007564338553438001},
    {0.06579634122155993, 0.013435661446562004},
    {0.09054634122155995, 0.01818566144656201},
    {0.10000000000000005, 0.020000000000000007},
    {0.09054634122155998, 0.018185661446562015},
    {0.06579634122155995, 0.013435661446562008},
  },
  warmup = {
    {0.06666666666666667, 0.013333333333333332},
    {0.1, 0.02},
    {0.08535533905932738, 0.017071067811865476},
    {0.05, 0.01},
    {0.014644660940672627, 0.0029289321881345253},
    {0.0, 0.0},
    {0.014644660940672622, 0.0029289321881345244},
    {0.05000000000000001, 0.010000000000000002},
    {0.0853553390593274, 0.017071067811865483},
    {0.10000000000000003, 0.02000000000000001},
    {0.0853553390593274, 0.017071067811865487},
    {0.05000000000000003, 0.010000000000000009},
  },
  plateau = {
    {0.1, 0.02},
    {0.1, 0.02},
    {0.1, 0.02},
    {0.05, 0.01},
    {0.05, 0.01},
    {0.05, 0.01},
    {0.05, 0.01},
    {0.05, 0.01},
    {0.025, 0.005},
    {0.025, 0.005},
    {0.025, 0.005},
    {0.025, 0.005},
  },
  plateau_max = {
    {0.1, 0.02},
    {0.05, 0.01},
    {0.025, 0.005},
    {0.0125, 0.0025},
    {0.00625, 0.00125},
    {0.003125, 0.000625},
    {0.0015625, 0.0003125},
    {0.00078125, 0.00015625},
    {0.000390625, 7.8125e-05},
    {0.0001953125, 3.90625e-05},
    {9.765625e-05, 1.953125e-05},
    {4.8828125e-05, 9.765625e-06},
  },
}

-- The problem every trajectory runs: loss = sum((w1 - t1)^2) + sum((w2 - t2)^2 * 0.5), with a
-- third parameter w3 that never gets a gradient.
local W1, T1 = {0.5, -1.5, 2.0, 3.0}, {1.0, 0.0, -1.0, 2.5}
local W2, T2 = {1.0, -2.0, 0.25}, {0.0, 1.0, 0.5}

local CASES = {
  sgd = function(a, b, c) return optim.SGD({a, b, c}, {lr = 0.1}) end,
  sgd_momentum = function(a, b, c)
    return optim.SGD({a, b, c}, {lr = 0.1, momentum = 0.9, dampening = 0.1, weight_decay = 0.01})
  end,
  sgd_nesterov = function(a, b, c)
    return optim.SGD({a, b, c}, {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01})
  end,
  sgd_groups = function(a, b, c)
    return optim.SGD({{params = {a}, lr = 0.1, momentum = 0.5}, {params = {b, c}}},
                     {lr = 0.05, momentum = 0.9})
  end,
  adam = function(a, b, c) return optim.Adam({a, b, c}, {lr = 0.1}) end,
  adam_amsgrad = function(a, b, c)
    return optim.Adam({a, b, c}, {lr = 0.1, weight_decay = 0.1, amsgrad = true})
  end,
  adam_groups = function(a, b)
    return optim.Adam({{params = {a}}, {params = {b}, lr = 0.01, betas = {0.5, 0.6}}},
                      {lr = 0.2, eps = 1e-3})
  end,
  adam_maximize = function(a, b, c) return optim.Adam({a, b, c}, {lr = 0.05, maximize = true}) end,
  adamw = function(a, b, c) return optim.AdamW({a, b, c}, {lr = 0.1, weight_decay = 0.1}) end,
  adamw_amsgrad = function(a, b, c)
    return optim.AdamW({a, b, c}, {lr = 0.1, betas = {0.8, 0.9}, eps = 1e-6, amsgrad = true})
  end,
  rmsprop = function(a, b, c) return optim.RMSprop({a, b, c}, {lr = 0.01}) end,
  rmsprop_center = function(a, b, c)
    return optim.RMSprop({a, b, c}, {lr = 0.01, centered = true, momentum = 0.9,
                                     weight_decay = 0.1})
  end,
  rmsprop_alpha = function(a, b, c)
    return optim.RMSprop({a, b, c}, {lr = 0.05, alpha = 0.9, momentum = 0.5})
  end,
  adagrad = function(a, b, c) return optim.Adagrad({a, b, c}, {lr = 0.1}) end,
  adagrad_decay = function(a, b, c)
    return optim.Adagrad({a, b, c}, {lr = 0.1, lr_decay = 0.1, weight_decay = 0.1,
                                     initial_accumulator_value = 0.5})
  end,
}

local function problem(dtype)
  local o = {dtype = dtype, requires_grad = true}
  local w1, w2, w3 = tide.tensor(W1, o), tide.tensor(W2, o), tide.tensor({7.0}, o)
  local t1, t2 = tide.tensor(T1, {dtype = dtype}), tide.tensor(T2, {dtype = dtype})
  local function loss() return ((w1 - t1) ^ 2):sum() + ((w2 - t2) ^ 2 * 0.5):sum() end
  return w1, w2, w3, loss
end

local function train(opt, loss, steps)
  for _ = 1, steps do
    opt:zero_grad()
    loss():backward()
    opt:step()
  end
end

local function assign(dst, src) tide.no_grad(function() dst:copy_(src) end) end

local function values(w1, w2)
  local v = w1:totable()
  for _, x in ipairs(w2:totable()) do v[#v + 1] = x end
  return v
end

local function close(got, want, tol, what)
  assert.equal(#want, #got, what)
  for i = 1, #want do
    local ok = math.abs(got[i] - want[i]) <= tol * (1 + math.abs(want[i]))
    assert(ok, ("%s: element %d is %.17g, expected %.17g"):format(what, i, got[i], want[i]))
  end
end

describe("optimizers match PyTorch 1.13", function()
  for name, make in pairs(CASES) do
    it(name .. " (float64, every step)", function()
      local w1, w2, w3, loss = problem("float64")
      local opt = make(w1, w2, w3)
      for step = 1, 5 do
        train(opt, loss, 1)
        close(values(w1, w2), REF[name][step], 1e-12, name .. " step " .. step)
      end
      assert.equal(7, w3:item())          -- no gradient: skipped, and no state made
      if opt.state[3] then assert.equal("adagrad", name:sub(1, 7)) end
    end)
    it(name .. " (float32)", function()
      local w1, w2, w3, loss = problem("float32")
      train(make(w1, w2, w3), loss, 5)
      close(values(w1, w2), REF[name][5], 2e-5, name)
    end)
  end

  it("updates large parameters on every thread like small ones", function()
    tide.manual_seed(3)
    local n = 300000
    local p = tide.randn(n, {dtype = "float64"})
    local q = p:clone()
    p.requires_grad, q.requires_grad = true, true
    local g = tide.randn(n, {dtype = "float64"})
    p.grad, q.grad = g, g:clone()
    local big = optim.Adam({p}, {lr = 0.01, amsgrad = true})
    big:step(); big:step()
    -- the same update element by element on a small slice
    local s = tide.tensor(q:narrow(1, n - 9, 10):totable(), {dtype = "float64", requires_grad = true})
    s.grad = g:narrow(1, n - 9, 10):clone()
    local small = optim.Adam({s}, {lr = 0.01, amsgrad = true})
    small:step(); small:step()
    close(p:narrow(1, n - 9, 10):totable(), s:totable(), 1e-15, "tail of a 300k parameter")
  end)

  it("updates a non-contiguous parameter through its strides", function()
    local base = tide.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "float64"})
    local p = base:t()                      -- 3x2, a leaf view
    p.requires_grad = true
    local ref = tide.tensor(p:totable(), {dtype = "float64", requires_grad = true})
    for _, w in ipairs {p, ref} do
      w.grad = tide.tensor({{1, -1}, {2, -2}, {0.5, 3}}, {dtype = "float64"})
      local opt = optim.SGD({w}, {lr = 0.1, momentum = 0.9})
      opt:step(); opt:step()
    end
    close(p:contiguous():view(-1):totable(), ref:view(-1):totable(), 0, "transposed")
    assert.equal(1 - 0.1 * 1 - 0.1 * 1.9, base[1][1])
  end)

  it("converts a gradient of another dtype to the parameter's", function()
    local p = tide.tensor({1, 2}, {requires_grad = true})
    p.grad = tide.tensor({1, 1}, {dtype = "float64"})
    optim.SGD({p}, {lr = 0.5}):step()
    close(p:totable(), {0.5, 1.5}, 0, "float32 parameter")
  end)
end)

describe("optimizer interface", function()
  it("reads and writes lr across groups", function()
    local a, b = tide.zeros(2, {requires_grad = true}), tide.zeros(2, {requires_grad = true})
    local opt = optim.Adam({{params = {a}, lr = 0.5}, {params = b}})
    assert.equal(0.5, opt.lr)
    assert.equal(1e-3, opt.param_groups[2].lr)
    opt.lr = 0.25
    assert.equal(0.25, opt.param_groups[1].lr)
    assert.equal(0.25, opt.param_groups[2].lr)
    assert.has_error(function() opt.lr = -1 end, "Adam: lr must be >= 0, got -1")
  end)

  it("clears gradients, or zeroes them in place", function()
    local w = tide.tensor({1, 2}, {requires_grad = true})
    local opt = optim.SGD({w}, {lr = 0.1})
    local y = (w * w):sum()
    y:backward()
    opt:zero_grad(false)
    assert.same({0, 0}, w.grad:totable())
    opt:zero_grad()
    assert.is_nil(w.grad)
  end)

  it("records nothing for autograd and bumps the parameter's version", function()
    local w = tide.tensor({1, 2}, {requires_grad = true})
    local opt = optim.SGD({w}, {lr = 0.1})
    local y = (w * w):sum()
    y:backward({retain_graph = true})
    opt:step()
    assert.is_nil(w.grad_fn)
    assert.is_true(w.requires_grad)
    assert.has_error(function() y:backward() end)   -- the graph saved the old w
  end)

  it("runs a closure and returns its loss", function()
    local w, _, _, loss = problem("float64")
    local opt = optim.SGD({w}, {lr = 0.1})
    local l = opt:step(function()
      opt:zero_grad()
      local v = loss()
      v:backward()
      return v
    end)
    assert.is_true(math.abs(l:item() - 16.78125) < 1e-12)
    close(w:totable(), {0.6, -1.2, 1.4, 2.9}, 1e-15, "after the closure step")
  end)

  it("takes positional lr, a module, and adds groups later", function()
    local a, b = tide.zeros(1, {requires_grad = true}), tide.zeros(1, {requires_grad = true})
    local opt = optim.SGD({a}, {0.3})
    assert.equal(0.3, opt.lr)
    local module = {parameters = function() return {a, b} end}
    assert.equal(2, #optim.Adam(module).param_groups[1].params)
    opt:add_param_group({params = {b}, lr = 0.1, momentum = 0.5})
    assert.equal(0.1, opt.param_groups[2].lr)
    assert.equal(0, opt.param_groups[2].dampening)
    assert.matches("SGD %(", tostring(opt))
  end)
end)

describe("optimizer errors", function()
  local w = tide.zeros(2, {requires_grad = true})
  local function fails(msg, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert(err:find(msg, 1, true), "expected '" .. msg .. "' in: " .. err)
  end
  it("names the optimizer and the option", function()
    fails("SGD: unknown option 'momentun'", optim.SGD, {w}, {lr = 0.1, momentun = 0.9})
    fails("Adam: lr must be >= 0, got -1", optim.Adam, {w}, {lr = -1})
    fails("SGD: lr is required", optim.SGD, {w})
    fails("SGD: empty parameter list", optim.SGD, {}, {lr = 1})
    fails("Adam: expected a list of tensors or of parameter groups, got nil", optim.Adam)
    fails("RMSprop: parameter 2 is a number, expected a tensor", optim.RMSprop, {w, 3})
    fails("Adagrad: parameter 1 (group 2) appears twice", optim.Adagrad, {{params = {w}}, {params = {w}}})
    fails("SGD: nesterov needs momentum > 0", optim.SGD, {w}, {lr = 1, nesterov = true})
    fails("Adam: betas[2] must be in [0, 1), got 1", optim.Adam, {w}, {betas = {0.9, 1}})
    fails("AdamW: eps must be >= 0", optim.AdamW, {w}, {eps = -1})
    fails("SGD: momentum must be a number, got string", optim.SGD, {w}, {lr = 1, momentum = "x"})
    fails("SGD: unknown option 'betas' (group 2)", optim.SGD, {{params = {w}},
          {params = {tide.zeros(1, {requires_grad = true})}, betas = {1, 2}}}, {lr = 1})
    fails("is int64, expected float32 or float64", optim.SGD, {tide.zeros(2, {dtype = "int64"})},
          {lr = 1})
    fails("is not a leaf", optim.SGD, {w * 2}, {lr = 1})
    fails("pass model:parameters()", optim.SGD, {weight = w}, {lr = 1})
  end)
  it("checks state buffers in C", function()
    local p = tide.zeros(3, {requires_grad = true})
    p.grad = tide.ones(3)
    local group = {lr = 0.1, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0}
    fails("state buffer 2 is a float32 tensor of shape 2, expected", tide._optim.adam, p, p.grad,
          tide.zeros(3), tide.zeros(2), nil, group, 1)
    fails("shares memory", tide._optim.adam, p, p.grad, p, tide.zeros(3), nil, group, 1)
    fails("Adam: step must be >= 1", tide._optim.adam, p, p.grad, tide.zeros(3), tide.zeros(3),
          nil, group, 0)
  end)
end)

describe("optimizer state_dict", function()
  for name, make in pairs(CASES) do
    it(name .. " resumes identically", function()
      local a1, a2, a3, la = problem("float64")
      local opt = make(a1, a2, a3)
      train(opt, la, 3)
      local sd = opt:state_dict()
      local b1, b2, b3, lb = problem("float64")
      assign(b1, a1); assign(b2, a2)
      train(opt, la, 2)                       -- sd is a snapshot: this does not change it
      local resumed = make(b1, b2, b3)
      resumed:load_state_dict(sd)
      train(resumed, lb, 2)
      close(values(b1, b2), values(a1, a2), 0, name .. " resumed")
    end)
  end

  it("is plain tables keyed by parameter index and reads back file-like keys", function()
    local w1, w2, w3, loss = problem("float64")
    local opt = optim.Adam({{params = {w1}}, {params = {w2, w3}, lr = 0.01}}, {amsgrad = true})
    train(opt, loss, 2)
    local sd = opt:state_dict()
    assert.same({1}, sd.param_groups[1].params)
    assert.same({2, 3}, sd.param_groups[2].params)
    assert.equal(2, sd.state[2].step)
    assert.is_nil(sd.state[3])
    assert.is_true(tide.is_tensor(sd.state[1].max_exp_avg_sq))
    -- as a checkpoint file may return it: string keys, flags as strings
    local filed = {state = {["1"] = sd.state[1], ["2"] = sd.state[2]}, param_groups = {}}
    for k, g in ipairs(sd.param_groups) do
      local c = {}
      for key, v in pairs(g) do c[key] = v end
      c.amsgrad, c.betas = tostring(g.amsgrad), {["1"] = g.betas[1], ["2"] = g.betas[2]}
      filed.param_groups[tostring(k)] = c
    end
    local v1, v2, v3, lv = problem("float64")
    assign(v1, w1); assign(v2, w2)
    local again = optim.Adam({{params = {v1}}, {params = {v2, v3}, lr = 0.5}})
    again:load_state_dict(filed)
    assert.equal(0.01, again.param_groups[2].lr)
    assert.is_true(again.param_groups[1].amsgrad)
    train(opt, loss, 1)
    train(again, lv, 1)
    close(values(v1, v2), values(w1, w2), 0, "loaded from file-like tables")
  end)

  it("refuses a state_dict of another shape", function()
    local w1, w2 = problem("float64")
    local opt = optim.SGD({w1, w2}, {lr = 0.1})
    assert.has_error(function() opt:load_state_dict({state = {}, param_groups = {{params = {1}}}}) end,
                     "SGD: load_state_dict: group 1 has 1 parameters saved, 2 in the optimizer")
  end)
end)

describe("schedulers match PyTorch 1.13", function()
  local METRICS = {1.0, 0.9, 0.95, 0.91, 0.92, 0.905, 0.85, 0.86, 0.87, 0.88, 0.84, 0.845}
  local SCHED = {
    step = function(o) return optim.StepLR(o, {step_size = 3, gamma = 0.5}) end,
    exponential = function(o) return optim.ExponentialLR(o, {gamma = 0.9}) end,
    cosine = function(o) return optim.CosineAnnealingLR(o, {T_max = 5, eta_min = 0.001}) end,
    warmup = function(o)
      return optim.LinearWarmup(o, {warmup_steps = 3, after = optim.CosineAnnealingLR(o, {T_max = 4})})
    end,
    plateau = function(o)
      return optim.ReduceLROnPlateau(o, {factor = 0.5, patience = 1, threshold = 0.01, cooldown = 1,
                                         min_lr = {0.01, 0.005}})
    end,
    plateau_max = function(o)
      return optim.ReduceLROnPlateau(o, {mode = "max", factor = 0.5, patience = 0,
                                         threshold = 0.01, threshold_mode = "abs"})
    end,
  }
  local function setup(name)
    local w = tide.zeros(1, {requires_grad = true})
    local opt = optim.SGD({{params = {w}}, {params = {tide.zeros(1, {requires_grad = true})},
                                            lr = 0.02}}, {lr = 0.1})
    return opt, SCHED[name](opt)
  end
  local function run(opt, s, name, from, to, out)
    for i = from, to do
      opt:step()
      s:step(name:find("plateau") and METRICS[i] or nil)
      out[#out + 1] = {opt.param_groups[1].lr, opt.param_groups[2].lr}
    end
    return out
  end
  for name in pairs(SCHED) do
    it(name, function()
      local opt, s = setup(name)
      local got = run(opt, s, name, 1, 12, {})
      for i = 1, 12 do close(got[i], LRS[name][i], 1e-15, name .. " step " .. i) end
      assert.same(got[12], s:get_last_lr())
      assert.equal(got[12][1], opt.lr)
    end)
    it(name .. " resumes from its state_dict", function()
      local opt, s = setup(name)
      local got = run(opt, s, name, 1, 5, {})
      local osd, ssd = opt:state_dict(), s:state_dict()
      local opt2, s2 = setup(name)
      opt2:load_state_dict(osd)
      s2:load_state_dict(ssd)
      run(opt2, s2, name, 6, 12, got)
      for i = 1, 12 do close(got[i], LRS[name][i], 1e-15, name .. " resumed, step " .. i) end
    end)
  end

  it("warmup alone ramps then holds; the lr is base * k / warmup_steps", function()
    local opt = optim.SGD({tide.zeros(1, {requires_grad = true})}, {lr = 1})
    local s = optim.LinearWarmup(opt, {4})
    assert.equal(0.25, opt.lr)
    local seen = {}
    for i = 1, 6 do opt:step(); s:step(); seen[i] = opt.lr end
    assert.same({0.5, 0.75, 1, 1, 1, 1}, seen)
  end)

  it("checks options", function()
    local opt = optim.SGD({tide.zeros(1, {requires_grad = true})}, {lr = 1})
    assert.has_error(function() optim.StepLR(opt, {step = 3}) end, "StepLR: unknown option 'step'")
    assert.has_error(function() optim.StepLR(opt, {}) end, "StepLR: step_size is required")
    assert.has_error(function() optim.CosineAnnealingLR(opt, {T_max = 0}) end,
                     "CosineAnnealingLR: T_max must be a positive number, got 0")
    assert.has_error(function() optim.ReduceLROnPlateau(opt, {factor = 1}) end,
                     "ReduceLROnPlateau: factor must be < 1, got 1")
    assert.has_error(function() optim.ExponentialLR(nil, {gamma = 0.5}) end,
                     "ExponentialLR: expected an optimizer, got nil")
    local other = optim.SGD({tide.zeros(1, {requires_grad = true})}, {lr = 1})
    assert.has_error(function()
      optim.LinearWarmup(opt, {warmup_steps = 2, after = optim.StepLR(other, {1})})
    end, "LinearWarmup: after must schedule the same optimizer")
    local p = optim.ReduceLROnPlateau(opt)
    assert.has_error(function() p:step() end,
                     "ReduceLROnPlateau: step needs the metric it watches (sched:step(val_loss)), got nil")
    p:step(tide.tensor(0.5))
    assert.equal(0.5, p.best)
  end)
end)

describe("per-group options of AdamW, RMSprop and Adagrad match PyTorch 1.13", function()
  local GROUPS = {  -- 3 steps of w1 and w2 (%.12g), from the G part of the script at the end
    adamw = {{0.574999999, -1.32500000033, 1.80000000017, 2.750000001, 0.954045454545, -1.95061290323, 0.285589285714},
      {0.645501555642, -1.15926366246, 1.61023906195, 2.51928203819, 0.90827787861, -1.90128599847, 0.320184334061},
      {0.711097282594, -1.00273038454, 1.4303696126, 2.31909896934, 0.862749698728, -1.85203491191, 0.353547230148}},
    rmsprop = {{0.600503771425, -1.39949622184, 1.89949622016, 2.89949622858, 0.9, -1.85, 0.29},
      {0.663741164919, -1.33040434843, 1.82911630208, 2.83625883508, 0.773130823038, -1.66382484827, 0.341685247414},
      {0.711239892628, -1.27486938093, 1.77184407208, 2.78876010737, 0.648882945765, -1.48035701378, 0.390800455778}},
    adagrad = {{0.59999999999, -1.4, 1.9, 2.90000000001, 0.866666666667, -1.82857142857, 0.316666666667},
      {0.641646336491, -1.35451211665, 1.85366519355, 2.85835366351, 0.771600711293, -1.70620732566, 0.361933154892},
      {0.666065024759, -1.32696568095, 1.82543923931, 2.83393497524, 0.695649107729, -1.60656741655, 0.394830796012}},
  }
  local MAKE = {
    adamw = function(a, b, c) return optim.AdamW({{params = {a}, weight_decay = 0.5, amsgrad = true},
                                                  {params = {b, c}, lr = 0.05, eps = 0.1}}, {lr = 0.1}) end,
    rmsprop = function(a, b, c) return optim.RMSprop({{params = {a}, centered = true},
      {params = {b, c}, lr = 0.02, momentum = 0.5, eps = 0.1}}, {lr = 0.01}) end,
    adagrad = function(a, b, c) return optim.Adagrad({{params = {a}, lr_decay = 0.5},
                                                      {params = {b, c}, lr = 0.2, eps = 0.5}}, {lr = 0.1}) end,
  }
  for name, make in pairs(MAKE) do
    it(name, function()
      local w1, w2, w3, loss = problem("float64")
      local opt = make(w1, w2, w3)
      for step = 1, 3 do
        train(opt, loss, 1)
        close(values(w1, w2), GROUPS[name][step], 1e-10, name .. " groups, step " .. step)
      end
    end)
  end
end)

describe("nn.utils.clip_grad_norm_", function()
  local function params()
    local a, b = tide.zeros(2, {requires_grad = true}), tide.zeros(2, 2, {requires_grad = true})
    a.grad, b.grad = tide.tensor({3, 4}), tide.tensor({{1, -2}, {2, 4}})
    return {a, b, tide.zeros(3, {requires_grad = true})}
  end
  local function grads(ps)
    local v = ps[1].grad:totable()
    for _, x in ipairs(ps[2].grad:view(-1):totable()) do v[#v + 1] = x end
    return v
  end
  -- torch.nn.utils.clip_grad_norm_(ps, 1.5, norm_type): total norm, then the scaled grads
  local REF_CLIP = {
    {2, 7.0710678100585938, {0.63639605, 0.848528028, 0.212132007, -0.424264014, 0.424264014,
                             0.848528028}},
    {1, 16, {0.28124994, 0.37499994, 0.0937499851, -0.18749997, 0.18749997, 0.37499994}},
    {math.huge, 4, {1.12499976, 1.49999964, 0.374999911, -0.749999821, 0.749999821, 1.49999964}},
    {3, 5.5612978935241699, {0.80916357, 1.07888472, 0.26972118, -0.53944236, 0.53944236,
                             1.07888472}},
  }
  for _, r in ipairs(REF_CLIP) do
    it("norm_type " .. tostring(r[1]), function()
      local ps = params()
      local total = utils.clip_grad_norm_(ps, 1.5, {norm_type = r[1]})
      assert.is_true(tide.is_tensor(total))
      close({total:item()}, {r[2]}, 1e-6, "total norm")
      close(grads(ps), r[3], 1e-6, "clipped grads")
      assert.is_nil(ps[3].grad)
    end)
  end
  it("leaves small gradients alone and returns 0 without gradients", function()
    local ps = params()
    close({utils.clip_grad_norm_(ps, 100):item()}, {7.0710678100585938}, 1e-6, "total")
    assert.same({3, 4}, ps[1].grad:totable())
    assert.equal(0, utils.clip_grad_norm_({tide.zeros(1)}, 1):item())
    assert.has_error(function() utils.clip_grad_norm_(ps, 1, {norm = 2}) end,
                     "clip_grad_norm_: unknown option 'norm'")
  end)
  it("clip_grad_value_ clamps every element", function()
    local ps = params()
    utils.clip_grad_value_(ps, 2.5)
    assert.same({2.5, 2.5, 1, -2, 2, 2.5}, grads(ps))
  end)
end)

--[==[ The numbers above: /usr/bin/python3 (torch 1.13.1) running this, output pasted.
import textwrap, torch
torch.set_default_dtype(torch.float64)
O, L = torch.optim, torch.optim.lr_scheduler
def emit(name, rows):
    print("  %s = {" % name)
    for r in rows:
        lines = textwrap.wrap("{" + ", ".join(repr(float(x)) for x in r) + "},", 94)
        for i, l in enumerate(lines): print(("    " if i == 0 else "     ") + l)
    print("  },")
def traj(make):
    w1 = torch.tensor([0.5, -1.5, 2.0, 3.0], requires_grad=True)
    w2 = torch.tensor([1.0, -2.0, 0.25], requires_grad=True)
    opt, out = make(w1, w2, torch.tensor([7.0], requires_grad=True)), []
    for _ in range(5):
        opt.zero_grad()
        (((w1 - torch.tensor([1.0, 0.0, -1.0, 2.5])) ** 2).sum()
         + ((w2 - torch.tensor([0.0, 1.0, 0.5])) ** 2 * 0.5).sum()).backward()
        opt.step()
        out.append(w1.tolist() + w2.tolist())
    return out
CASES = {  # CASES below, in PyTorch's spelling
    "sgd": lambda a, b, c: O.SGD([a, b, c], lr=0.1),
    "sgd_momentum": lambda a, b, c: O.SGD([a, b, c], lr=0.1, momentum=0.9, dampening=0.1,
                                          weight_decay=0.01),
    "sgd_nesterov": lambda a, b, c: O.SGD([a, b, c], lr=0.1, momentum=0.9, nesterov=True,
                                          weight_decay=0.01),
    "sgd_groups": lambda a, b, c: O.SGD([{"params": [a], "lr": 0.1, "momentum": 0.5},
                                         {"params": [b, c]}], lr=0.05, momentum=0.9),
    "adam": lambda a, b, c: O.Adam([a, b, c], lr=0.1),
    "adam_amsgrad": lambda a, b, c: O.Adam([a, b, c], lr=0.1, weight_decay=0.1, amsgrad=True),
    "adam_groups": lambda a, b, c: O.Adam([{"params": [a]}, {"params": [b], "lr": 0.01,
                                          "betas": (0.5, 0.6)}], lr=0.2, eps=1e-3),
    "adam_maximize": lambda a, b, c: O.Adam([a, b, c], lr=0.05, maximize=True),
    "adamw": lambda a, b, c: O.AdamW([a, b, c], lr=0.1, weight_decay=0.1),
    "adamw_amsgrad": lambda a, b, c: O.AdamW([a, b, c], lr=0.1, betas=(0.8, 0.9), eps=1e-6,
                                             amsgrad=True),
    "rmsprop": lambda a, b, c: O.RMSprop([a, b, c], lr=0.01),
    "rmsprop_center": lambda a, b, c: O.RMSprop([a, b, c], lr=0.01, centered=True, momentum=0.9,
                                                weight_decay=0.1),
    "rmsprop_alpha": lambda a, b, c: O.RMSprop([a, b, c], lr=0.05, alpha=0.9, momentum=0.5),
    "adagrad": lambda a, b, c: O.Adagrad([a, b, c], lr=0.1),
    "adagrad_decay": lambda a, b, c: O.Adagrad([a, b, c], lr=0.1, lr_decay=0.1, weight_decay=0.1,
                                               initial_accumulator_value=0.5),
}
print("local REF = {")
for name, make in CASES.items(): emit(name, traj(make))
print("}")
G = {  # MAKE of the per-group describe: 3 steps at %.12g
    "adamw": lambda a, b, c: O.AdamW([{"params": [a], "weight_decay": 0.5, "amsgrad": True},
                                      {"params": [b, c], "lr": 0.05, "eps": 0.1}], lr=0.1),
    "rmsprop": lambda a, b, c: O.RMSprop([{"params": [a], "centered": True}, {"params": [b, c],
                                          "lr": 0.02, "momentum": 0.5, "eps": 0.1}], lr=0.01),
    "adagrad": lambda a, b, c: O.Adagrad([{"params": [a], "lr_decay": 0.5},
                                          {"params": [b, c], "lr": 0.2, "eps": 0.5}], lr=0.1),
}
for name, make in G.items():
    rows = ["{" + ", ".join("%.12g" % x for x in r) + "}" for r in traj(make)[:3]]
    print("    %s = {%s}," % (name, ",\n      ".join(rows)))
M = [1.0, 0.9, 0.95, 0.91, 0.92, 0.905, 0.85, 0.86, 0.87, 0.88, 0.84, 0.845]
SCHED = {  # SCHED below
    "step": lambda o: L.StepLR(o, step_size=3, gamma=0.5),
    "exponential": lambda o: L.ExponentialLR(o, gamma=0.9),
    "cosine": lambda o: L.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
    "warmup": lambda o: L.SequentialLR(o, [L.LinearLR(o, 1 / 3, 1, total_iters=2),
                                           L.CosineAnnealingLR(o, T_max=4)], milestones=[2]),
    "plateau": lambda o: L.ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.01,
                                             cooldown=1, min_lr=[0.01, 0.005]),
    "plateau_max": lambda o: L.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=0,
                                                 threshold=0.01, threshold_mode="abs"),
}
print("local LRS = {")
for name, make in SCHED.items():
    opt = O.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                 {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.02}], lr=0.1)
    s, rows = make(opt), []
    for i in range(12):
        opt.step()
        s.step(M[i]) if "plateau" in name else s.step()
        rows.append([g["lr"] for g in opt.param_groups])
    emit(name, rows)
print("}")
]==]
