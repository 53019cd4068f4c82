#include "tools/miniature/speech_corpus.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>

#include "tools/miniature/talking_face.h"

namespace la::miniature {
namespace {

const std::vector<std::string> kTrainingSentences = {
    "Hello, and welcome to the live stream.",
    "Today we talk about the weather in the mountains.",
    "Please remember to save your work before you leave.",
    "The quick brown fox jumps over the lazy dog.",
    "I will see you again tomorrow morning.",
    "Open the window, it is getting warm in here.",
    "My favourite colour is a deep shade of blue.",
    "We measured the results twice to be sure.",
    "Could you pass me the salt, please?",
    "The train to the city leaves at half past nine.",
    "Music makes the long evenings shorter.",
    "A small boat sailed across the quiet lake.",
    "Thank you all for watching, goodbye!",
    "Numbers like seven, eleven and forty two.",
    "She sells sea shells by the sea shore.",
    "Our next guest is a famous painter.",
    "Breakfast is the most important meal of the day.",
    "The library opens at eight and closes at six.",
    "Wow, that was a really loud noise!",
    "Let me explain how this machine works.",
    "Every block of video follows the sound.",
    "Mountains, rivers and forests all around us.",
    "Do not forget to water the plants.",
    "He laughed, and then he sang a song.",
    "The meeting has been moved to Friday.",
    "Turn left at the bakery and walk straight on.",
    "Good evening, here are the latest headlines.",
    "It is raining cats and dogs outside.",
    "We are going to build a wooden house.",
    "Keep calm and carry on talking.",
    "One, two, three, four, five, six.",
    "The children played football in the park.",
    "Coffee or tea, what would you like?",
    "This is a test of the emergency broadcast system.",
    "Yesterday I found an old photograph.",
    "Please speak slowly and clearly.",
};

const std::vector<std::string> kHeldOutSentences = {
    "A bright yellow kite flew over the hill.",
    "Welcome back, it is good to see you again.",
    "The orchestra played until midnight.",
    "Nobody expected the final question.",
    "Pick up the red book on the table.",
    "Sunlight danced on the surface of the water.",
};

struct Voice {
  const char* name;
  int speed_min, speed_max;
};
const std::vector<Voice> kTrainingVoices = {
    {"en+m1", 130, 190}, {"en+m3", 130, 190}, {"en+f2", 130, 190},
    {"en+f4", 130, 190}, {"en-us+m2", 130, 190}, {"en-us+f3", 130, 190},
};
const Voice kHeldOutVoice = {"en+m5", 150, 170};

uint32_t read_u32(const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24); }
uint16_t read_u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// espeak-ng's WAV on stdout: RIFF with sizes it could not seek back to fill
// in, so the data chunk runs to the end of the stream.
std::vector<float> parse_espeak_wav(const std::vector<unsigned char>& b, int* rate) {
  if (b.size() < 12 || std::memcmp(b.data(), "RIFF", 4) || std::memcmp(b.data() + 8, "WAVE", 4))
    throw std::runtime_error("espeak-ng did not write a WAV file");
  size_t pos = 12;
  int channels = 0, bits = 0;
  while (pos + 8 <= b.size()) {
    const uint32_t len = read_u32(&b[pos + 4]);
    if (!std::memcmp(&b[pos], "fmt ", 4) && pos + 8 + 16 <= b.size()) {
      channels = read_u16(&b[pos + 10]);
      *rate = static_cast<int>(read_u32(&b[pos + 12]));
      bits = read_u16(&b[pos + 22]);
    } else if (!std::memcmp(&b[pos], "data", 4)) {
      if (channels != 1 || bits != 16) throw std::runtime_error("espeak-ng wrote a WAV that is not 16-bit mono");
      const size_t end = std::min(b.size(), len > b.size() ? b.size() : pos + 8 + len);
      std::vector<float> out;
      for (size_t i = pos + 8; i + 1 < end; i += 2) out.push_back(static_cast<int16_t>(read_u16(&b[i])) / 32768.0f);
      return out;
    }
    if (len > b.size()) break;
    pos += 8 + len + (len & 1);
  }
  throw std::runtime_error("espeak-ng's WAV has no data chunk");
}

std::vector<float> resample_linear(const std::vector<float>& in, int from, int to) {
  if (in.empty() || from == to) return in;
  const size_t n = static_cast<size_t>(static_cast<double>(in.size()) * to / from);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const double x = i * static_cast<double>(from) / to;
    const size_t k = static_cast<size_t>(x);
    const double f = x - k;
    out[i] = static_cast<float>(in[k] * (1 - f) + (k + 1 < in.size() ? in[k + 1] : 0.0f) * f);
  }
  return out;
}

}  // namespace

std::vector<float> speak(const std::string& text, const std::string& voice, int speed, int pitch) {
  char path[] = "/tmp/la-miniature-text-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw std::runtime_error("cannot create a temporary file for espeak-ng");
  const bool wrote = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  std::unique_ptr<char, void (*)(char*)> remove_file(path, [](char* p) { unlink(p); });
  if (!wrote) throw std::runtime_error("cannot write the text for espeak-ng");
  const std::string cmd = "espeak-ng -v '" + voice + "' -s " + std::to_string(speed) + " -p " +
                          std::to_string(pitch) + " --stdout -f " + path + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot run espeak-ng");
  std::vector<unsigned char> bytes;
  unsigned char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) bytes.insert(bytes.end(), buf, buf + n);
  const int status = pclose(p);
  if (status != 0 || bytes.empty())
    throw std::runtime_error("espeak-ng failed (is it installed? apt-get install espeak-ng): " + cmd);
  int rate = 0;
  const std::vector<float> samples = parse_espeak_wav(bytes, &rate);
  if (rate <= 0) throw std::runtime_error("espeak-ng's WAV has no sample rate");
  return resample_linear(samples, rate, static_cast<int>(kSampleRate));
}

SpeechClip make_speech_clip(uint64_t seed, bool held_out, int sentences) {
  std::mt19937_64 rng(seed);
  const auto& pool = held_out ? kHeldOutSentences : kTrainingSentences;
  const Voice& voice = held_out ? kHeldOutVoice : kTrainingVoices[rng() % kTrainingVoices.size()];
  const int speed = voice.speed_min + static_cast<int>(rng() % (voice.speed_max - voice.speed_min + 1));
  const int pitch = 35 + static_cast<int>(rng() % 31);
  SpeechClip clip;
  clip.description = std::string(voice.name) + " " + std::to_string(speed) + " wpm:";
  auto silence = [&](double lo, double hi) {
    const double s = lo + (hi - lo) * std::uniform_real_distribution<double>(0, 1)(rng);
    clip.samples.insert(clip.samples.end(), static_cast<size_t>(s * kSampleRate), 0.0f);
  };
  silence(0, 0.5);
  for (int i = 0; i < sentences; ++i) {
    if (i) silence(0.2, 1.2);
    const std::string& text = pool[rng() % pool.size()];
    const std::vector<float> s = speak(text, voice.name, speed, pitch);
    clip.samples.insert(clip.samples.end(), s.begin(), s.end());
    clip.description += " " + text;
  }
  silence(0.2, 0.6);
  return clip;
}

void write_wav(const std::string& path, const std::vector<float>& samples) {
  std::ofstream f(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.put(v & 255).put((v >> 8) & 255).put((v >> 16) & 255).put((v >> 24) & 255); };
  auto u16 = [&](uint16_t v) { f.put(v & 255).put((v >> 8) & 255); };
  const uint32_t data = static_cast<uint32_t>(samples.size() * 2);
  f.write("RIFF", 4);
  u32(36 + data);
  f.write("WAVEfmt ", 8);
  u32(16), u16(1), u16(1), u32(kSampleRate), u32(kSampleRate * 2), u16(2), u16(16);
  f.write("data", 4);
  u32(data);
  for (float s : samples) u16(static_cast<uint16_t>(static_cast<int16_t>(std::lround(std::clamp(s, -1.0f, 1.0f) * 32767))));
  if (!f) throw std::runtime_error("cannot write " + path);
}

}  // namespace la::miniature
