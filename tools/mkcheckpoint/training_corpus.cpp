#include "tools/mkcheckpoint/training_corpus.h"

namespace la::tools {
namespace {

// Written for this tool: prompts of the kind the avatar model is given, plus
// other scripts so the tokenizer sees CJK, accents, digits and punctuation.
const char* const kSentences[] = {
    "A dwarven blacksmith stands at his forge, speaking calmly to the camera.",
    "A young woman with short black hair talks in a bright studio, soft light from the left.",
    "The news presenter looks into the lens and reads the evening headlines.",
    "An old sailor with a grey beard tells a story about the sea, waves behind him.",
    "A teacher explains the lesson in front of a green chalkboard, smiling warmly.",
    "Close-up portrait, natural expression, the person is talking and gesturing slightly.",
    "The streamer laughs, leans toward the microphone and answers a question from the chat.",
    "A cartoon fox in a red scarf sings a short song in a snowy forest.",
    "Cinematic lighting, shallow depth of field, 25 frames per second, high detail.",
    "She nods, pauses for a moment, then continues speaking in a low voice.",
    "Un homme âgé parle lentement devant une bibliothèque remplie de livres anciens.",
    "Eine Ärztin erklärt die Behandlung freundlich und ruhig in ihrem Sprechzimmer.",
    "Una presentadora sonríe y saluda al público desde el plató de televisión.",
    "Um cantor de fado interpreta uma canção triste numa rua de Lisboa à noite.",
    "Молодой человек рассказывает о своём путешествии по горам Кавказа.",
    "一位年轻的女士在明亮的房间里对着镜头说话，表情自然。",
    "老人坐在窗边，慢慢地讲述他年轻时的故事。",
    "東京の夜景を背景に、アナウンサーがニュースを読み上げています。",
    "카메라를 바라보며 밝게 웃는 여성이 인사를 건넵니다.",
    "رجل يتحدث بهدوء أمام الكاميرا في غرفة مضاءة جيدًا.",
    "एक शिक्षक कक्षा में बच्चों को कहानी सुना रहे हैं।",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 25 48 720 400 1920 1080 2026.",
    "Punctuation & symbols: (quotes) \"double\" 'single' - dash; colon: slash / at @ hash # 100% $5.",
    "The quick brown fox jumps over the lazy dog while the band plays on.",
    "Speak clearly, keep your head still, and look directly at the viewer.",
    "Background: a wooden workshop, hammers and tongs hanging on the wall, warm orange glow.",
    "The avatar blinks naturally and its lips follow every syllable of the speech.",
    "Weather today: sunny in the morning, clouds in the afternoon, light rain at night.",
    "Thank you for watching, please subscribe and see you in the next video!",
    "A robot with a friendly face explains how the machine learning model works.",
};

}  // namespace

std::vector<std::string> training_corpus() {
  std::vector<std::string> lines;
  // Repetition in shifted combinations gives the unigram trainer enough
  // co-occurrence statistics to fill a few hundred pieces.
  const size_t n = sizeof(kSentences) / sizeof(kSentences[0]);
  for (size_t r = 0; r < 8; ++r)
    for (size_t i = 0; i < n; ++i)
      lines.push_back(std::string(kSentences[i]) + " " + kSentences[(i * 7 + r) % n]);
  return lines;
}

}  // namespace la::tools
